#pragma once
#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace est {

// Times `steps` training steps of the configured model on synthetic tokens (speed does not depend on the
// data) after two warm-up steps, and the GEMM backend at the model's largest GEMM shape in the same process,
// interleaved with the steps. Returns medians: tokens_per_second, step_seconds, achieved_gflops, gemm_gflops,
// gemm_fraction = achieved / gemm, and the peak RSS.
nlohmann::json run_bench(const Config& cfg, int steps);

}  // namespace est
