#include <cuda_runtime_api.h>

#include "train/free_memory.hpp"

namespace est {

// Of the device Kokkos chose for this rank (it is the current one once Kokkos is initialised).
std::optional<int64_t> free_device_memory() {
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return std::nullopt;
  return int64_t(free);
}

}  // namespace est
