#pragma once
#include "model/gpt2.hpp"
#include "optim/optimizer.hpp"

namespace est {

struct StepStats {
  float loss;
  double grad_norm;  // before clipping
};

// One optimizer step on the batch already set in the model: forward, backward, global-norm clipping to
// grad_clip (0: none), AdamW at learning rate lr. Throws if the loss or the gradient is not finite.
StepStats train_step(GPT2& model, AdamW& optimizer, float lr, double grad_clip);

}  // namespace est
