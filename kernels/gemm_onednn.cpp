// oneDNN backend: dnnl_sgemm is row-major and threads through OpenMP in Debian's build.
#include <dnnl.h>
#include <omp.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "gemm.hpp"

namespace est::gemm {
namespace {

char op_char(Op op) { return op == Op::N ? 'N' : 'T'; }

void onednn_sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  dnnl_status_t s = dnnl_sgemm(op_char(ta), op_char(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (s != dnnl_success) throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(s));
}

void onednn_sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                  int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  // Attention's products are small (T x T x head size): one product per thread beats splitting each one
  // across threads (measured 87 vs 52 GFLOP/s at 128x128x64 on 2 cores). dnnl_sgemm runs sequentially
  // inside a parallel region.
  std::exception_ptr error;
#pragma omp parallel for schedule(static) if (batch >= omp_get_max_threads())
  for (int64_t i = 0; i < batch; ++i) {
    try {
      onednn_sgemm(ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void onednn_set_threads(int n) { omp_set_num_threads(n); }

}  // namespace

extern const Table onednn_table;
const Table onednn_table{onednn_sgemm, onednn_sgemm_strided_batched, onednn_set_threads};

}  // namespace est::gemm
