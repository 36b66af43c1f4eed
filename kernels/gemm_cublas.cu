// cuBLAS backend (CUDA builds). cuBLAS is column-major: a row-major C = op(A)op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the operands swap and the leading dimensions stay as they are.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "gemm.hpp"

namespace est::gemm {
namespace {

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + " failed: status " + std::to_string(s));
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

cublasHandle_t shared_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t made = nullptr;
    check(cublasCreate(&made), "cublasCreate");
    return made;
  }();
  return h;
}

// The handle in the math mode of the precision that calls it. fp32 is pedantic: no TF32 tensor-core rounding, so
// CPU and GPU runs agree to fp32 accuracy.
cublasHandle_t handle(cublasMath_t mode) {
  check(cublasSetMathMode(shared_handle(), mode), "cublasSetMathMode");
  return shared_handle();
}

cublasOperation_t op_cublas(Op op) { return op == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

// fp32 (pedantic) and tf32 (TF32 tensor cores allowed) differ only in the math mode.
template <cublasMath_t Mode>
void cublas_sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check(cublasSgemm(handle(Mode), op_cublas(tb), op_cublas(ta), static_cast<int>(N), static_cast<int>(M),
                    static_cast<int>(K), &alpha, B, static_cast<int>(ldb), A, static_cast<int>(lda), &beta, C,
                    static_cast<int>(ldc)),
        "cublasSgemm");
}

template <cublasMath_t Mode>
void cublas_sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                  int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                  float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  check(cublasSgemmStridedBatched(handle(Mode), op_cublas(tb), op_cublas(ta), static_cast<int>(N),
                                  static_cast<int>(M), static_cast<int>(K), &alpha, B, static_cast<int>(ldb),
                                  strideB, A, static_cast<int>(lda), strideA, &beta, C, static_cast<int>(ldc),
                                  strideC, static_cast<int>(batch)),
        "cublasSgemmStridedBatched");
}

// An operand rounded to bf16: the rows x cols it is stored as, for each item of the batch, packed densely (ld =
// cols), so that a strided operand (one head's columns of qkv) converts only what the product reads.
struct Packed {
  const __nv_bfloat16* data;
  int64_t ld, stride;
};

__global__ void pack_bf16_kernel(const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t n,
                                 __nv_bfloat16* out) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t r = i / cols;
    out[i] = __float2bfloat16_rn(x[r / rows * stride + r % rows * ld + i % cols]);
  }
}

// Device memory for both packed operands, grown to the largest product's and reused; allocated and freed in the
// stream's order, so growing it never waits for the GPU.
__nv_bfloat16* workspace(int64_t elements, cudaStream_t stream) {
  static void* data = nullptr;
  static int64_t capacity = 0;
  if (elements > capacity) {
    if (data) check(cudaFreeAsync(data, stream), "cudaFreeAsync");
    check(cudaMallocAsync(&data, size_t(elements) * sizeof(__nv_bfloat16), stream), "cudaMallocAsync");
    capacity = elements;
  }
  return static_cast<__nv_bfloat16*>(data);
}

Packed pack_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                 __nv_bfloat16* out, cudaStream_t stream) {
  const int64_t n = batch * rows * cols;
  if (n > 0) {
    constexpr int kThreads = 256;
    const int blocks = static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 16));
    pack_bf16_kernel<<<blocks, kThreads, 0, stream>>>(x, rows, cols, ld, stride, n, out);
    check(cudaGetLastError(), "pack_bf16_kernel");
  }
  return {out, std::max<int64_t>(cols, 1), rows * cols};
}

// bf16: both operands rounded into the workspace on the kernels' stream (no host round trip), then bf16 inputs,
// fp32 C and fp32 accumulation (CUBLAS_COMPUTE_32F) on the tensor cores.
void cublas_bf16_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                 int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                                 float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  cublasHandle_t h = handle(CUBLAS_DEFAULT_MATH);
  cudaStream_t stream = nullptr;
  check(cublasGetStream(h, &stream), "cublasGetStream");
  // B's copy starts on a 256-byte boundary, as the tensor cores prefer.
  const int64_t a_elements = (batch * M * K + 127) / 128 * 128;
  __nv_bfloat16* w = workspace(a_elements + batch * K * N, stream);
  const Packed a = pack_bf16(A, ta == Op::N ? M : K, ta == Op::N ? K : M, lda, strideA, batch, w, stream);
  const Packed b = pack_bf16(B, tb == Op::N ? K : N, tb == Op::N ? N : K, ldb, strideB, batch, w + a_elements, stream);
  check(cublasGemmStridedBatchedEx(h, op_cublas(tb), op_cublas(ta), static_cast<int>(N), static_cast<int>(M),
                                   static_cast<int>(K), &alpha, b.data, CUDA_R_16BF, static_cast<int>(b.ld), b.stride,
                                   a.data, CUDA_R_16BF, static_cast<int>(a.ld), a.stride, &beta, C, CUDA_R_32F,
                                   static_cast<int>(ldc), strideC, static_cast<int>(batch), CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx");
}

void cublas_bf16_gemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cublas_bf16_strided_batched(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

}  // namespace

// Runs cuBLAS on the stream the Kokkos kernels use, so the two stay ordered without host syncs.
void cublas_bind_stream(void* stream) {
  check(cublasSetStream(shared_handle(), static_cast<cudaStream_t>(stream)), "cublasSetStream");
}

extern const Table cublas_table, cublas_tf32_table, cublas_bf16_table;
const Table cublas_table{cublas_sgemm<CUBLAS_PEDANTIC_MATH>, cublas_sgemm_strided_batched<CUBLAS_PEDANTIC_MATH>,
                         nullptr, nullptr};
const Table cublas_tf32_table{cublas_sgemm<CUBLAS_TF32_TENSOR_OP_MATH>,
                              cublas_sgemm_strided_batched<CUBLAS_TF32_TENSOR_OP_MATH>, nullptr, nullptr};
const Table cublas_bf16_table{cublas_bf16_gemm, cublas_bf16_strided_batched, nullptr, nullptr};

}  // namespace est::gemm
