#pragma once
// Training FLOPs of the GEMMs and the attention core that a step executes, and of the same step on the full
// model (est-method.md §5, causal convention). Training counts 3x forward: the backward pass is a data-gradient
// and a weight-gradient GEMM per forward GEMM.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "est/sampler.hpp"
#include "est/schedule.hpp"
#include "est/subnetwork.hpp"
#include "model/shape.hpp"

namespace est {

extern const char* const kFlopsConvention;

struct StepFlops {
  double executed = 0;
  double full = 0;  // the same tokens through the full model
};

// T: context length (the attention core's width); tokens: tokens in the step (batch x T).
StepFlops step_flops(const ModelShape& s, int T, int64_t tokens, const Subnetwork& sub);
// The same with every active layer running HEADS query heads over KV_HEADS key/value heads (-1: whole groups)
// and NEURONS MLP neurons.
StepFlops step_flops(const ModelShape& s, int T, int64_t tokens, const std::vector<bool>& active_layers, int heads,
                     int neurons, double kv_heads = -1);

struct StageFlops {
  size_t stage = 0;
  int64_t first_step = 0, end_step = 0;  // [first_step, end_step)
  int heads = 0, neurons = 0;   // per active layer, whole model
  double kv_heads = 0;          // the key/value heads they read (expected, for query-head draws)
  double active_layers = 0;     // mean over the stage's steps of the layers drawn
  double flops = 0, flops_full = 0;

  double ratio() const { return flops_full > 0 ? flops / flops_full : 1.0; }
};

struct ScheduleFlops {
  std::vector<StageFlops> stages;
  double flops = 0, flops_full = 0;

  // Fraction of the full model's training FLOPs not executed.
  double saving() const { return flops_full > 0 ? 1.0 - flops / flops_full : 0.0; }
};

// Sums every step of a run of TOTAL_STEPS: the layer masks the sampler draws (exact for Bernoulli sampling too),
// the head and neuron counts from count_for, the key/value heads as SubnetworkSampler::kv_heads_for.
ScheduleFlops schedule_flops(const ModelShape& s, int T, int64_t tokens_per_step, const Schedule& sched,
                             const SubnetworkSampler& sampler, int64_t total_steps);

}  // namespace est
