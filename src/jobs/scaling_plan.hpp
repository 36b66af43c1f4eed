#pragma once
// The points of a scaling study: for each node count, the process grid and the batch a run uses. Strong scaling
// keeps the global batch; weak scaling keeps the batch of one data-parallel rank, taken from the configuration at
// the smallest node count. `est jobs scaling` writes a job per point and `est simulate` predicts each one.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace est {

enum class ScalingMode { strong, weak };

struct ScalingRequest {
  std::vector<int> nodes;  // node counts, e.g. 1,2,4,8
  ScalingMode mode = ScalingMode::strong;
  int tp = 0;              // tensor-parallel size; 0: the config's parallel.tp
  int ranks_per_node = 1;
};

struct ScalingPoint {
  int nodes = 1;
  int ranks = 1;
  int tp = 1;
  int dp = 1;
  int global_batch = 1;  // sequences per step, all ranks together (train.batch_size of the run)
  double per_rank_batch = 1;  // global_batch / dp
};

// "strong" or "weak"; InputError naming `where` otherwise.
ScalingMode parse_scaling_mode(const std::string& text, const std::string& where);
// "1,2,4,8" (positive, strictly increasing); InputError naming `where` otherwise.
std::vector<int> parse_node_list(const std::string& text, const std::string& where);
const char* to_string(ScalingMode mode);

// Throws InputError (naming the config file and the key) when a point cannot run: a TP size that does not divide
// the ranks or the heads, or fewer sequences than data-parallel ranks.
std::vector<ScalingPoint> plan_scaling(const Config& cfg, const ScalingRequest& request);

}  // namespace est
