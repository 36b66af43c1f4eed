#pragma once
#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace est {

// Times training steps of the configured model on synthetic tokens (speed does not depend on the data): for
// every stage of est.schedule, and for the full model, `steps` steps each after a warm-up, interleaved round by
// round so the shared machine's drifts hit all of them alike; and the GEMM backend at the model's largest GEMM
// shape after each round. Medians throughout. Top-level figures are the full model's: tokens_per_second,
// step_seconds, flops_per_step, achieved_gflops (llm.c's FLOPs formula), gemm_gflops, gemm_fraction, peak RSS;
// "stages" gives each stage's step time and FLOPs as ratios to the full model's.
nlohmann::json run_bench(const Config& cfg, int steps);

}  // namespace est
