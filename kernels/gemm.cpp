#include "gemm.hpp"

#include <Kokkos_Core.hpp>
#include <stdexcept>
#include <thread>

namespace est::gemm {

#ifdef EST_HAVE_ONEDNN
extern const Table onednn_table, onednn_bf16_table;
#endif
#ifdef EST_HAVE_CBLAS
extern const Table cblas_table;
#endif
#ifdef EST_HAVE_CUBLAS
extern const Table cublas_table, cublas_tf32_table, cublas_bf16_table;
void cublas_bind_stream(void* stream);
#endif

namespace {

// The table that runs b's products at p; null where this build has no such product. CPUs have no TF32, so tf32
// is their fp32 table.
const Table* table_for(Backend b, Precision p) {
  switch (b) {
#ifdef EST_HAVE_ONEDNN
    case Backend::onednn: return p == Precision::bf16 ? &onednn_bf16_table : &onednn_table;
#endif
#ifdef EST_HAVE_CBLAS
    case Backend::cblas: return p == Precision::bf16 ? nullptr : &cblas_table;
#endif
#ifdef EST_HAVE_CUBLAS
    case Backend::cublas:
      return p == Precision::bf16 ? &cublas_bf16_table : p == Precision::tf32 ? &cublas_tf32_table : &cublas_table;
#endif
    default: return nullptr;
  }
}

struct State {
  Backend backend = default_backend();
  Precision precision = Precision::fp32;
  const Table* table = table_for(backend, precision);
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool stream_bound = false;
};

State& state() {
  static State s;
  return s;
}

// The backend's table, cuBLAS bound to the stream the Kokkos kernels use (at the first product, when Kokkos is
// surely running), so the two stay ordered without host syncs.
const Table& active_table() {
  State& s = state();
#if defined(EST_HAVE_CUBLAS) && defined(KOKKOS_ENABLE_CUDA)
  if (s.backend == Backend::cublas && !s.stream_bound) {
    cublas_bind_stream(Kokkos::DefaultExecutionSpace().cuda_stream());
    s.stream_bound = true;
  }
#endif
  return *s.table;
}

}  // namespace

bool parse_backend(const std::string& name, Backend& out) {
  if (name == "auto") { out = default_backend(); return true; }
  if (name == "onednn") { out = Backend::onednn; return true; }
  if (name == "cblas") { out = Backend::cblas; return true; }
  if (name == "cublas") { out = Backend::cublas; return true; }
  return false;
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::onednn: return "onednn";
    case Backend::cblas: return "cblas";
    case Backend::cublas: return "cublas";
  }
  return "?";
}

bool backend_available(Backend b) { return table_for(b, Precision::fp32) != nullptr; }

Backend default_backend() {
#if defined(EST_HAVE_CUBLAS)
  return Backend::cublas;
#elif defined(EST_HAVE_ONEDNN)
  return Backend::onednn;
#else
  return Backend::cblas;
#endif
}

bool parse_precision(const std::string& name, Precision& out) {
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
    if (name == precision_name(p)) { out = p; return true; }
  return false;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

std::string unsupported(Backend b, Precision p) {
  if (!backend_available(b)) return std::string("GEMM backend '") + backend_name(b) + "' is not in this build";
  const Table* t = table_for(b, p);
  if (!t)
    return std::string(precision_name(p)) + " needs runtime.gemm: onednn (on a CPU with AVX512-BF16 or AMX-BF16) " +
           "or cublas; " + backend_name(b) + " has no " + precision_name(p) + " products";
  return t->unsupported ? t->unsupported() : "";
}

void set_backend(Backend b, Precision p) {
  const std::string why = unsupported(b, p);
  if (!why.empty()) throw std::invalid_argument(why);
  const Table* t = table_for(b, p);
  state().backend = b;
  state().precision = p;
  state().table = t;
  if (t->set_threads) t->set_threads(state().threads);
}

Backend current_backend() { return state().backend; }

Precision current_precision() { return state().precision; }

std::string description() {
  const State& s = state();
  std::string d = std::string(backend_name(s.backend)) + " " + precision_name(s.precision);
  if (s.precision != Precision::fp32 && s.table == table_for(s.backend, Precision::fp32)) d += " (as fp32 on CPUs)";
  return d;
}

void set_threads(int n) {
  state().threads = std::max(1, n);
  if (state().table && state().table->set_threads) state().table->set_threads(state().threads);
}

int threads() { return state().threads; }

void sgemm(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // Kokkos kernels may still be in flight on an asynchronous backend.
  Kokkos::fence();
  active_table().sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm_strided_batched(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                           int64_t lda, int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                           float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  Kokkos::fence();
  active_table().sgemm_strided_batched(ta, tb, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                                       strideC, batch);
}

}  // namespace est::gemm
