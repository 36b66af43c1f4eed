#include "train/step.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "reduce.hpp"

namespace est {

StepStats train_step(GPT2& model, AdamW& optimizer, float lr, double grad_clip) {
  StepStats s;
  s.loss = model.forward_backward();
  s.grad_norm = std::sqrt(sum_of_squares(model.grads()));
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm))
    throw std::runtime_error("step " + std::to_string(optimizer.steps_taken() + 1) +
                             ": loss or gradient is not finite (loss " + std::to_string(s.loss) +
                             ", gradient norm " + std::to_string(s.grad_norm) + ")");
  const float scale = grad_clip > 0 && s.grad_norm > grad_clip ? static_cast<float>(grad_clip / s.grad_norm) : 1.0f;
  optimizer.step(model, lr, scale);
  Kokkos::fence();
  return s;
}

}  // namespace est
