#pragma once
#include <stdexcept>

#include "model/model.hpp"
#include "optim/optimizer.hpp"
#include "parallel/gradient_reducer.hpp"
#include "parallel/process_grid.hpp"

namespace est {

// Where a step runs: the process grid (none: one rank) and the global batch's tokens, which the loss is
// averaged over whatever this rank's share of the batch.
struct StepContext {
  const ProcessGrid* grid = nullptr;
  int64_t global_tokens = 0;  // 0: this rank's batch is the whole batch
  double slow_factor = 1.0;   // emulate a slow node: compute takes this many times longer
  GradientReduction reduction;  // how the gradient is summed over the data-parallel group
};

struct StepStats {
  float loss;        // mean over the global batch
  double grad_norm;  // of the whole model's gradient, before clipping
  // This rank's time: computing, blocked in collectives (the gradient's sum only where the backward pass did not
  // hide it), and waiting for the slowest data-parallel rank to finish its backward pass.
  double compute_seconds = 0, comm_seconds = 0, wait_seconds = 0;
  int64_t grad_bytes = 0;  // gradient payload reduced over the data-parallel group (the subnetwork's only)
  // The data-parallel sum of the gradient: its own time, and the part of it this rank waited for (in comm_seconds).
  double dp_reduce_seconds = 0, dp_exposed_seconds = 0;
};

// The loss or the gradient stopped being finite. Every rank sees it at the same step (both are reduced over the
// grid), so it ends the run everywhere without aborting, and the last checkpoint stays as it was.
struct TrainingDiverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One optimizer step on the batch already set in the model: forward and backward, the sum of the (compact)
// gradient over the data-parallel group (in buckets, overlapped with the backward pass as ctx.reduction says),
// global-norm clipping to grad_clip (0: none), AdamW at learning rate lr. Throws if the loss or the gradient is not
// finite.
StepStats train_step(Model& model, AdamW& optimizer, float lr, double grad_clip, const StepContext& ctx = {});

// The norm of the whole model's gradient: tensor-parallel shards summed over the group, replicated tensors once.
double gradient_norm(const Model& model, const ProcessGrid* grid);

}  // namespace est
