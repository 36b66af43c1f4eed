// oneDNN backend: dnnl_sgemm for fp32 (tf32 too: CPUs have no TF32), dnnl_gemm_bf16bf16f32 for bf16; both are
// row-major and thread through OpenMP in Debian's build.
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "bf16.hpp"
#include "gemm.hpp"

// libdnnl exports its bf16 GEMM (bf16 A and B; fp32 C, alpha and beta; row-major as dnnl_sgemm) but its public
// headers do not declare it; oneDNN's own tests declare it so. A bf16 is passed as its bits.
extern "C" dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
                                              float alpha, const uint16_t* A, dnnl_dim_t lda, const uint16_t* B,
                                              dnnl_dim_t ldb, float beta, float* C, dnnl_dim_t ldc);

namespace est::gemm {
namespace {

char op_char(Op op) { return op == Op::N ? 'N' : 'T'; }

void check(dnnl_status_t s, const char* what) {
  if (s != dnnl_success) throw std::runtime_error(std::string(what) + " failed with status " + std::to_string(s));
}

// Attention's products are small (T x T x head size): one product per thread beats splitting each one across
// threads (measured 87 vs 52 GFLOP/s at 128x128x64 on 2 cores). oneDNN's GEMMs run sequentially inside a
// parallel region.
template <class Product>
void one_per_thread(int64_t batch, const Product& product) {
  std::exception_ptr error;
#pragma omp parallel for schedule(static) if (batch >= omp_get_max_threads())
  for (int64_t i = 0; i < batch; ++i) {
    try {
      product(i);
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void onednn_sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check(dnnl_sgemm(op_char(ta), op_char(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), "dnnl_sgemm");
}

void onednn_sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                  int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  one_per_thread(batch, [&](int64_t i) {
    onednn_sgemm(ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
  });
}

// An operand rounded to bf16: the rows x cols it is stored as, for each item of the batch, packed densely (ld =
// cols), so that a strided operand (one head's columns of qkv) converts only what the product reads.
struct Packed {
  const uint16_t* data;
  int64_t ld, stride;
};

// One core converts 1 to 5 elements a nanosecond (measured on GPT-2 124M's operands); below a million elements
// that is less than waking the other threads may cost on a busy machine (milliseconds per parallel region
// measured on a shared 2-core one).
constexpr int64_t kParallelElements = 1 << 20;

// Into a workspace per operand (0: A, 1: B) that grows to the largest product's and is reused: est runs one
// product at a time, from one thread.
Packed pack_bf16(int operand, const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                 int64_t batch) {
  static std::vector<uint16_t> workspace[2];
  std::vector<uint16_t>& w = workspace[operand];
  const int64_t n = batch * rows * cols;
  if (int64_t(w.size()) < n) w.resize(size_t(n));
  uint16_t* out = w.data();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t r = 0; r < batch * rows; ++r) {
    const float* in = x + r / rows * stride + r % rows * ld;
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = bf16::from_float(in[c]);
  }
  return {out, std::max<int64_t>(cols, 1), rows * cols};
}

void onednn_bf16_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                 int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                 float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  const Packed a = pack_bf16(0, A, ta == Op::N ? M : K, ta == Op::N ? K : M, lda, strideA, batch);
  const Packed b = pack_bf16(1, B, tb == Op::N ? K : N, tb == Op::N ? N : K, ldb, strideB, batch);
  one_per_thread(batch, [&](int64_t i) {
    check(dnnl_gemm_bf16bf16f32(op_char(ta), op_char(tb), M, N, K, alpha, a.data + i * a.stride, a.ld,
                                b.data + i * b.stride, b.ld, beta, C + i * strideC, ldc),
          "dnnl_gemm_bf16bf16f32");
  });
}

void onednn_bf16_gemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  onednn_bf16_strided_batched(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2 with VNNI";
    case dnnl_cpu_isa_avx512_core: return "AVX-512";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 with VNNI";
    default: return "no bf16 instructions";
  }
}

// Without the CPU's bf16 instructions oneDNN emulates bf16 in AVX-512 or refuses; AMX-BF16 CPUs have
// AVX512-BF16 as well. The ISA is oneDNN's effective one: DNNL_MAX_CPU_ISA lowers it.
std::string onednn_bf16_unsupported() {
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "";
  return std::string("bf16 needs a CPU with AVX512-BF16 or AMX-BF16 instructions for oneDNN's bf16 GEMM (or a ") +
         "CUDA build); this CPU has " + isa_name(isa) + " (oneDNN's instruction set)";
}

void onednn_set_threads(int n) { omp_set_num_threads(n); }

}  // namespace

extern const Table onednn_table, onednn_bf16_table;
const Table onednn_table{onednn_sgemm, onednn_sgemm_strided_batched, onednn_set_threads, nullptr};
const Table onednn_bf16_table{onednn_bf16_gemm, onednn_bf16_strided_batched, onednn_set_threads,
                              onednn_bf16_unsupported};

}  // namespace est::gemm
