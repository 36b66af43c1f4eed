#include "train/runtime.hpp"

#include <cstdlib>
#include <thread>

#include "gemm.hpp"

namespace est {

int configure_runtime(const RuntimeConfig& rt) {
  int threads = rt.threads;
  if (threads == 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = env ? std::atoi(env) : 0;
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  gemm::Backend backend;
  gemm::parse_backend(rt.gemm, backend);  // validated with the config
  gemm::set_threads(threads);
  gemm::set_backend(backend);
  return threads;
}

}  // namespace est
