#pragma once
// One GEMM interface for every matrix product in est. Row-major, like the model's tensors:
// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. Pointers live in the default memory space
// (host for the CPU backends, device for cuBLAS).
#include <cstdint>
#include <string>

namespace est::gemm {

enum class Op { N, T };

enum class Backend { onednn, cblas, cublas };

// Parses "onednn", "cblas", "cublas" or "auto"; returns false on an unknown name.
bool parse_backend(const std::string& name, Backend& out);
const char* backend_name(Backend b);
bool backend_available(Backend b);
Backend default_backend();

void set_backend(Backend b);
Backend current_backend();
// Threads the CPU backends may use (oneDNN through OpenMP, OpenBLAS through its own pool).
void set_threads(int n);
int threads();

void sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// batch independent products; operand i starts at A + i*strideA (likewise B, C).
void sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                           int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                           float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch);

// A backend is a table of these two entry points; each backend file defines one.
struct Table {
  void (*sgemm)(Op, Op, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                float, float*, int64_t);
  void (*sgemm_strided_batched)(Op, Op, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                                const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
  void (*set_threads)(int);
};

}  // namespace est::gemm
