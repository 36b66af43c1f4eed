#pragma once
// How much memory a run may still allocate, for the memory plan's check (train/memory_plan.hpp).
#include <cstdint>
#include <optional>

namespace est {

// This node's free host memory: the kernel's MemAvailable, and no more than any enclosing cgroup (a Slurm job's
// --mem, a container's limit) leaves below its limit.
int64_t free_host_memory();
// The free memory of this rank's GPU in a CUDA build; none where the kernels' memory is the host's.
std::optional<int64_t> free_device_memory();
// This process's resident memory now.
int64_t resident_bytes();

}  // namespace est
