#include "train/step.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

#include "reduce.hpp"
#include "train/timing.hpp"

namespace est {

namespace {

double comm_seconds(const ProcessGrid* grid) {
  return grid ? grid->tp().stats().seconds + grid->dp().stats().seconds : 0.0;
}

}  // namespace

double gradient_norm(const Model& model, const ProcessGrid* grid) {
  // The compact gradient keeps each tensor's slices together: one reduction per tensor.
  double sq[2] = {0.0, 0.0};  // sharded, replicated
  const auto& slices = model.active().slices();
  for (size_t i = 0; i < slices.size();) {
    const int id = slices[i].id;
    const int64_t begin = slices[i].grad_offset;
    int64_t end = begin;
    for (; i < slices.size() && slices[i].id == id; ++i) end = slices[i].grad_offset + slices[i].grad_size();
    sq[model.layout()[id].sharded() ? 0 : 1] += sum_of_squares(cvec(model.grads().data() + begin, end - begin));
  }
  if (grid) grid->tp().allreduce_sum(&sq[0], 1);
  return std::sqrt(sq[0] + sq[1]);
}

StepStats train_step(Model& model, AdamW& optimizer, float lr, double grad_clip, const StepContext& ctx) {
  StepStats s;
  const double comm0 = comm_seconds(ctx.grid);
  auto t0 = Clock::now();
  s.loss = model.forward_backward(ctx.global_tokens);
  Kokkos::fence();
  double compute = seconds_since(t0) - (comm_seconds(ctx.grid) - comm0);
  if (ctx.slow_factor > 1.0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(compute * (ctx.slow_factor - 1.0)));
    compute *= ctx.slow_factor;
  }

  s.grad_bytes = int64_t(model.grads().extent(0)) * int64_t(sizeof(float));
  if (ctx.grid && ctx.grid->dp_size() > 1) {
    // A barrier first, so the reduction's own time and the wait for the slowest rank are told apart.
    t0 = Clock::now();
    ctx.grid->dp().barrier();
    s.wait_seconds = seconds_since(t0);
    ctx.grid->dp().allreduce_sum(model.grads().data(), int64_t(model.grads().extent(0)));
    double loss = s.loss;
    ctx.grid->dp().allreduce_sum(&loss, 1);
    s.loss = static_cast<float>(loss);
  }
  s.grad_norm = gradient_norm(model, ctx.grid);
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm))
    throw TrainingDiverged("step " + std::to_string(optimizer.steps_taken() + 1) +
                             ": loss or gradient is not finite (loss " + std::to_string(s.loss) +
                             ", gradient norm " + std::to_string(s.grad_norm) + ")");
  const float scale = grad_clip > 0 && s.grad_norm > grad_clip ? static_cast<float>(grad_clip / s.grad_norm) : 1.0f;
  t0 = Clock::now();
  optimizer.step(model, lr, scale);
  Kokkos::fence();
  compute += seconds_since(t0);
  s.compute_seconds = compute;
  s.comm_seconds = comm_seconds(ctx.grid) - comm0 - s.wait_seconds;
  return s;
}

}  // namespace est
