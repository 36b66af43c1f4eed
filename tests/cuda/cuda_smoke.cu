// Compile-and-link check of the cuBLAS GEMM backend and NCCL. Where a GPU exists it also checks numbers:
// est's cuBLAS table against a double-precision CPU product, and an NCCL all-reduce over every device.
// Exit status: 0 passed, 1 mismatch or CUDA error, 77 no usable device (ctest reports it as skipped).
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "gemm.hpp"

namespace est::gemm {
extern const Table cublas_table;
}

namespace {

using est::gemm::Op;

constexpr int kSkip = 77;
constexpr double kTolerance = 1e-4;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
}

// A device copy of a host vector, on the current device.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<float>& host) : n_(host.size()) {
    check(cudaMalloc(&data_, n_ * sizeof(float)), "cudaMalloc");
    check(cudaMemcpy(data_, host.data(), n_ * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  float* data() const { return data_; }
  std::vector<float> to_host() const {
    std::vector<float> host(n_);
    check(cudaMemcpy(host.data(), data_, n_ * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return host;
  }

 private:
  float* data_ = nullptr;
  size_t n_;
};

std::vector<float> random_vector(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Row-major C[M,N] = alpha op(A) op(B) + beta C, `batch` times. Non-square sizes and padded leading
// dimensions, so a swapped operand or dimension cannot pass.
struct Problem {
  Op ta, tb;
  int64_t batch;
  int64_t M = 13, N = 9, K = 11;
  float alpha = 0.5f, beta = 0.25f;

  int64_t lda() const { return (ta == Op::N ? K : M) + 2; }
  int64_t ldb() const { return (tb == Op::N ? N : K) + 3; }
  int64_t ldc() const { return N + 1; }
  int64_t stride_a() const { return (ta == Op::N ? M : K) * lda(); }
  int64_t stride_b() const { return (tb == Op::N ? K : N) * ldb(); }
  int64_t stride_c() const { return M * ldc(); }
  std::string name() const {
    return std::string(ta == Op::N ? "N" : "T") + (tb == Op::N ? "N" : "T") + " batch " + std::to_string(batch);
  }
};

std::vector<double> reference(const Problem& p, const std::vector<float>& A, const std::vector<float>& B,
                              const std::vector<float>& C) {
  std::vector<double> out(C.begin(), C.end());
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* a = A.data() + b * p.stride_a();
    const float* bm = B.data() + b * p.stride_b();
    const int64_t c0 = b * p.stride_c();
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < p.K; ++k)
          s += double(p.ta == Op::N ? a[i * p.lda() + k] : a[k * p.lda() + i]) *
               double(p.tb == Op::N ? bm[k * p.ldb() + j] : bm[j * p.ldb() + k]);
        out[c0 + i * p.ldc() + j] = p.alpha * s + p.beta * double(C[c0 + i * p.ldc() + j]);
      }
  }
  return out;
}

// Worst |got - want| / (1 + |want|); the padding columns of C must come back untouched.
double worst_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]) / (1 + std::abs(want[i])));
  return worst;
}

bool check_gemm(const Problem& p) {
  const auto A = random_vector(p.batch * p.stride_a(), 1), B = random_vector(p.batch * p.stride_b(), 2);
  const auto C = random_vector(p.batch * p.stride_c(), 3);
  DeviceBuffer dA(A), dB(B), dC(C);
  const est::gemm::Table& t = est::gemm::cublas_table;
  if (p.batch == 1)
    t.sgemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, dA.data(), p.lda(), dB.data(), p.ldb(), p.beta, dC.data(), p.ldc());
  else
    t.sgemm_strided_batched(p.ta, p.tb, p.M, p.N, p.K, p.alpha, dA.data(), p.lda(), p.stride_a(), dB.data(),
                            p.ldb(), p.stride_b(), p.beta, dC.data(), p.ldc(), p.stride_c(), p.batch);
  check(cudaDeviceSynchronize(), "cuBLAS gemm");
  const double err = worst_error(dC.to_host(), reference(p, A, B, C));
  const bool ok = err <= kTolerance;
  std::printf("cuda_smoke: cuBLAS %s: max error %.2e %s\n", p.name().c_str(), err, ok ? "ok" : "MISMATCH");
  return ok;
}

// Device d contributes d + 1 + i % 7 at index i; the in-place sum over ndev devices is exact in fp32.
bool check_allreduce(int ndev) {
  constexpr size_t n = 1000;
  std::vector<ncclComm_t> comms(ndev);
  check(ncclCommInitAll(comms.data(), ndev, nullptr), "ncclCommInitAll");
  std::vector<cudaStream_t> streams(ndev);
  std::vector<std::unique_ptr<DeviceBuffer>> bufs;
  for (int d = 0; d < ndev; ++d) {
    check(cudaSetDevice(d), "cudaSetDevice");
    check(cudaStreamCreate(&streams[d]), "cudaStreamCreate");
    std::vector<float> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = float(d + 1 + i % 7);
    bufs.push_back(std::make_unique<DeviceBuffer>(h));
  }
  check(ncclGroupStart(), "ncclGroupStart");
  for (int d = 0; d < ndev; ++d)
    check(ncclAllReduce(bufs[d]->data(), bufs[d]->data(), n, ncclFloat, ncclSum, comms[d], streams[d]),
          "ncclAllReduce");
  check(ncclGroupEnd(), "ncclGroupEnd");
  bool ok = true;
  for (int d = 0; d < ndev; ++d) {
    check(cudaSetDevice(d), "cudaSetDevice");
    check(cudaStreamSynchronize(streams[d]), "all-reduce");
    const std::vector<float> got = bufs[d]->to_host();
    for (size_t i = 0; i < n; ++i) ok &= got[i] == float(ndev * (ndev + 1) / 2 + ndev * int(i % 7));
    check(cudaStreamDestroy(streams[d]), "cudaStreamDestroy");
    check(ncclCommDestroy(comms[d]), "ncclCommDestroy");
  }
  std::printf("cuda_smoke: NCCL all-reduce over %d device(s): %s\n", ndev, ok ? "ok" : "MISMATCH");
  return ok;
}

// No device, no driver, or only the stub libcuda: nothing can run, but compiling and linking succeeded.
bool no_usable_device(cudaError_t e, int ndev) {
  return e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorStubLibrary ||
         (e == cudaSuccess && ndev == 0);
}

}  // namespace

int main() {
  int ndev = 0;
  const cudaError_t e = cudaGetDeviceCount(&ndev);
  if (no_usable_device(e, ndev)) {
    std::puts("cuda_smoke: no CUDA device; cuBLAS backend and NCCL compiled and linked only");
    return kSkip;
  }
  try {
    check(e, "cudaGetDeviceCount");
    bool ok = true;
    for (const Problem& p : {Problem{Op::N, Op::N, 1}, Problem{Op::N, Op::T, 1}, Problem{Op::T, Op::N, 1},
                             Problem{Op::T, Op::T, 1}, Problem{Op::N, Op::T, 3}, Problem{Op::N, Op::N, 3}})
      ok &= check_gemm(p);
    ok &= check_allreduce(ndev);
    return ok ? 0 : 1;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "cuda_smoke: %s\n", ex.what());
    return 1;
  }
}
