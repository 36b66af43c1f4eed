// CBLAS backend: any CBLAS (OpenBLAS, BLIS, MKL, NVPL). Thread count is set where the library exposes it.
#include <cblas.h>

#include "gemm.hpp"

// OpenBLAS's own knob; absent (null) with other CBLAS libraries.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace est::gemm {
namespace {

CBLAS_TRANSPOSE op_cblas(Op op) { return op == Op::N ? CblasNoTrans : CblasTrans; }

void cblas_gemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, op_cblas(ta), op_cblas(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cblas_gemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  for (int64_t i = 0; i < batch; ++i)
    cblas_gemm(ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
}

void cblas_set_threads(int n) {
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

}  // namespace

extern const Table cblas_table;
const Table cblas_table{cblas_gemm, cblas_gemm_strided_batched, cblas_set_threads, nullptr};

}  // namespace est::gemm
