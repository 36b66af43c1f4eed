#include "train/runtime.hpp"

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cstdlib>
#include <thread>

#include "gemm.hpp"
#include "input_error.hpp"
#include "views.hpp"

namespace est {

int resolve_threads(int configured) {
  int threads = configured;
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = env ? std::atoi(env) : 0;
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, threads);
}

KokkosSession::KokkosSession(int threads) {
  // Kokkos 3.7 replaced InitArguments (Debian's 3.4) with InitializationSettings (the only one in 4.x).
#if KOKKOS_VERSION >= 30700
  Kokkos::initialize(Kokkos::InitializationSettings().set_num_threads(threads).set_disable_warnings(true));
#else
  Kokkos::InitArguments args;
  args.num_threads = threads;
  args.disable_warnings = true;
  Kokkos::initialize(args);
#endif
}

KokkosSession::~KokkosSession() { Kokkos::finalize(); }

std::string kokkos_description() {
  using Space = Kokkos::DefaultExecutionSpace;
  const int v = KOKKOS_VERSION;
  std::string d = "Kokkos " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
                  std::to_string(v % 100) + " " + Space::name();
  if (kHostKernels)
    d += ", " + std::to_string(Space().concurrency()) + " thread(s)";
  return d;
}

int configure_runtime(const Config& cfg) {
  const int threads = resolve_threads(cfg.runtime.threads);
  gemm::Backend backend;
  gemm::Precision precision;
  gemm::parse_backend(cfg.runtime.gemm, backend);  // both validated with the config
  gemm::parse_precision(cfg.runtime.precision, precision);
  // Checked here rather than with the config: whether the CPU has bf16 instructions is the running machine's
  // business, not that of one that only plans or inspects a run.
  const std::string why = gemm::unsupported(backend, precision);
  if (!why.empty()) throw InputError(cfg.path, "runtime.precision", why);
  gemm::set_threads(threads);
  gemm::set_backend(backend, precision);
  return threads;
}

}  // namespace est
