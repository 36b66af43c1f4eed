#pragma once
#include "config/config.hpp"

namespace est {

// Applies runtime.threads and runtime.gemm; returns the thread count in use.
int configure_runtime(const RuntimeConfig& rt);

}  // namespace est
