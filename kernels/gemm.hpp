#pragma once
// One GEMM interface for every matrix product in est. Row-major, like the model's tensors:
// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. Pointers live in the default memory space
// (host for the CPU backends, device for cuBLAS). A, B, C, alpha and beta are fp32 at every precision; the
// precision is what the backend computes the product in.
#include <cstdint>
#include <string>

namespace est::gemm {

enum class Op { N, T };

enum class Backend { onednn, cblas, cublas };

// fp32: fp32 operands and arithmetic. tf32: cuBLAS may round the operands to TF32 (10 mantissa bits) on tensor
// cores; CPUs have no TF32 and run fp32. bf16: both operands rounded to bfloat16 (bf16.hpp), the products
// accumulated in fp32.
enum class Precision { fp32, tf32, bf16 };

// Parses "onednn", "cblas", "cublas" or "auto"; returns false on an unknown name.
bool parse_backend(const std::string& name, Backend& out);
const char* backend_name(Backend b);
bool backend_available(Backend b);
Backend default_backend();

// Parses "fp32", "tf32" or "bf16"; returns false on an unknown name.
bool parse_precision(const std::string& name, Precision& out);
const char* precision_name(Precision p);

// Why backend b cannot run products at precision p on this machine; empty when it can.
std::string unsupported(Backend b, Precision p);

// Every product from here on runs on b at p; std::invalid_argument with unsupported()'s reason when it cannot.
void set_backend(Backend b, Precision p = Precision::fp32);
Backend current_backend();
Precision current_precision();
// The backend and what its products compute in: "onednn bf16", "cublas tf32", "onednn tf32 (as fp32 on CPUs)".
std::string description();
// Threads the CPU backends may use (oneDNN through OpenMP, OpenBLAS through its own pool).
void set_threads(int n);
int threads();

void sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// batch independent products; operand i starts at A + i*strideA (likewise B, C).
void sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                           int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                           float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch);

// A backend is a table of these entry points for each precision it runs; each backend file defines its own.
struct Table {
  void (*sgemm)(Op, Op, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                float, float*, int64_t);
  void (*sgemm_strided_batched)(Op, Op, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                                const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
  void (*set_threads)(int);
  // Why this machine cannot run the table's products (empty when it can); null where it always can.
  std::string (*unsupported)();
};

}  // namespace est::gemm
