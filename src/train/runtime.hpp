#pragma once
// The process's compute runtime: Kokkos and the GEMM backends, with one thread count for both.
#include <string>

#include "config/config.hpp"

namespace est {

// The host threads a process uses: `configured` (runtime.threads) when positive, else OMP_NUM_THREADS, else
// every core.
int resolve_threads(int configured);

// Kokkos for the lifetime of this object. It starts once the config is known, so that runtime.threads sets the
// host threads of the OpenMP and Threads backends as it sets the GEMM's. Kokkos' own start-up warnings (OpenMP's
// OMP_PROC_BIND advice, oversubscription notes) are off: est's stderr carries its own messages only. Other
// Kokkos settings come from its environment variables (KOKKOS_DEVICE_ID, KOKKOS_MAP_DEVICE_ID_BY, ...).
class KokkosSession {
 public:
  explicit KokkosSession(int threads);
  ~KokkosSession();
  KokkosSession(const KokkosSession&) = delete;
  KokkosSession& operator=(const KokkosSession&) = delete;
};

// "Kokkos 4.6.1 OpenMP, 2 thread(s)": the version, the default execution space and, on the host, its threads.
std::string kokkos_description();

// Applies runtime.threads, runtime.gemm and runtime.precision to the GEMM backends; returns the thread count in
// use. InputError naming runtime.precision where this machine cannot run the precision on that backend.
int configure_runtime(const Config& cfg);

}  // namespace est
