#pragma once
// An EST schedule (est-method.md §3): consecutive stages, each with constant sampling rates for heads, MLP
// neurons and layers, ending at a fraction of the run or at an absolute step.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "est/head_units.hpp"
#include "model/shape.hpp"

namespace est {

enum class LayerSampling {
  uniform,    // exactly count_for(p_layers, n_layer) layers
  bernoulli,  // each layer kept with probability p_layers
};

struct StageSpec {
  double until = 1.0;        // exclusive end as a fraction of the run
  int64_t until_step = -1;   // exclusive end as an absolute step; overrides until when >= 0
  double p_heads = 1, p_mlp = 1, p_layers = 1;
  LayerSampling layer_sampling = LayerSampling::uniform;
  bool keep_first_layer = false, keep_last_layer = false;
  bool shared_draw = false;  // one head/neuron draw for all layers of a step

  bool is_full() const { return p_heads == 1 && p_mlp == 1 && p_layers == 1; }
};

struct Schedule {
  std::string path;  // empty for the built-in full schedule
  std::vector<StageSpec> stages;

  // Exclusive end step of STAGE: until_step, or round(until * total_steps).
  int64_t stage_end(size_t stage, int64_t total_steps) const;
  // The stage that trains 0-based STEP: the first one ending after it (the last stage past every end).
  size_t stage_at(int64_t step, int64_t total_steps) const;
};

// One full-model stage until the end: training without EST.
Schedule full_schedule();

// Parses and validates PATH. Throws InputError(file, key, message), file being PATH or PATH:LINE and key e.g.
// "stages[1].p_heads".
Schedule load_schedule(const std::string& path);

// The checks that need the model and the run length: sets that round to nothing, stages ending out of order or
// after the run, a last stage that stops early. Throws InputError(schedule path, key, message); returns
// warnings (each one line naming the file and key) for schedules that run but are probably unintended.
// `tp_ranks`: the tensor-parallel ranks the heads and neurons are split over; each needs at least one of each
// (of the head units `unit` names).
std::vector<std::string> check_schedule(const Schedule& schedule, const ModelShape& shape, int64_t total_steps,
                                        int tp_ranks = 1, HeadUnit unit = HeadUnit::kv_group);

// Realised set size for rate P out of N: round(P * N) (est-method.md §4).
int count_for(double p, int n);

}  // namespace est
