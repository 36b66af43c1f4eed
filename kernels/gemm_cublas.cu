// cuBLAS backend (CUDA builds). cuBLAS is column-major: a row-major C = op(A)op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the operands swap and the leading dimensions stay as they are.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "gemm.hpp"

namespace est::gemm {
namespace {

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + " failed: status " + std::to_string(s));
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t made = nullptr;
    check(cublasCreate(&made), "cublasCreate");
    // Full fp32: no TF32 tensor-core rounding, so CPU and GPU runs agree to fp32 accuracy.
    check(cublasSetMathMode(made, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    return made;
  }();
  return h;
}

cublasOperation_t op_cublas(Op op) { return op == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

void cublas_sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check(cublasSgemm(handle(), op_cublas(tb), op_cublas(ta), static_cast<int>(N), static_cast<int>(M),
                    static_cast<int>(K), &alpha, B, static_cast<int>(ldb), A, static_cast<int>(lda), &beta, C,
                    static_cast<int>(ldc)),
        "cublasSgemm");
}

void cublas_sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                  int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  check(cublasSgemmStridedBatched(handle(), op_cublas(tb), op_cublas(ta), static_cast<int>(N),
                                  static_cast<int>(M), static_cast<int>(K), &alpha, B, static_cast<int>(ldb),
                                  strideB, A, static_cast<int>(lda), strideA, &beta, C, static_cast<int>(ldc),
                                  strideC, static_cast<int>(batch)),
        "cublasSgemmStridedBatched");
}

}  // namespace

// Runs cuBLAS on the stream the Kokkos kernels use, so the two stay ordered without host syncs.
void cublas_bind_stream(void* stream) {
  check(cublasSetStream(handle(), static_cast<cudaStream_t>(stream)), "cublasSetStream");
}

extern const Table cublas_table;
const Table cublas_table{cublas_sgemm, cublas_sgemm_strided_batched, nullptr};

}  // namespace est::gemm
