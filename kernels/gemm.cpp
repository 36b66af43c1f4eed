#include "gemm.hpp"

#include <Kokkos_Core.hpp>
#include <stdexcept>
#include <thread>

namespace est::gemm {

#ifdef EST_HAVE_ONEDNN
extern const Table onednn_table;
#endif
#ifdef EST_HAVE_CBLAS
extern const Table cblas_table;
#endif
#ifdef EST_HAVE_CUBLAS
extern const Table cublas_table;
void cublas_bind_stream(void* stream);
#endif

namespace {

const Table* table_for(Backend b) {
  switch (b) {
#ifdef EST_HAVE_ONEDNN
    case Backend::onednn: return &onednn_table;
#endif
#ifdef EST_HAVE_CBLAS
    case Backend::cblas: return &cblas_table;
#endif
#ifdef EST_HAVE_CUBLAS
    case Backend::cublas: return &cublas_table;
#endif
    default: return nullptr;
  }
}

struct State {
  Backend backend = default_backend();
  const Table* table = table_for(backend);
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

bool backend_available(Backend b) { return table_for(b) != nullptr; }

Backend default_backend() {
#if defined(EST_HAVE_CUBLAS)
  return Backend::cublas;
#elif defined(EST_HAVE_ONEDNN)
  return Backend::onednn;
#else
  return Backend::cblas;
#endif
}

void set_backend(Backend b) {
  const Table* t = table_for(b);
  if (!t) throw std::invalid_argument(std::string("GEMM backend '") + backend_name(b) + "' is not in this build");
  state().backend = b;
  state().table = t;
  if (t->set_threads) t->set_threads(state().threads);
}

Backend current_backend() { return state().backend; }

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
