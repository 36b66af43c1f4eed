#include "train/step.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "reduce.hpp"
#include "train/timing.hpp"

namespace est {

namespace {

double comm_seconds(const ProcessGrid* grid) {
  return grid ? grid->tp().stats().seconds + grid->dp().stats().seconds : 0.0;
}

}  // namespace

double gradient_norm(const Model& model, const ProcessGrid* grid) {
  const VecF g = model.grads();
  if (!grid || grid->tp_size() == 1) return std::sqrt(sum_of_squares(g));
  // Tensor-parallel shards are summed over the group, replicated tensors counted once: one reduction per run of
  // slices that lie back to back in the gradient and are alike.
  std::vector<const ActiveSlice*> order;
  for (const ActiveSlice& s : model.active().slices()) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](auto a, auto b) { return a->grad_offset < b->grad_offset; });
  double sq[2] = {0.0, 0.0};  // sharded, replicated
  for (size_t i = 0; i < order.size();) {
    const bool sharded = model.layout()[order[i]->id].sharded();
    const int64_t begin = order[i]->grad_offset;
    int64_t end = begin;
    for (; i < order.size() && order[i]->grad_offset == end && model.layout()[order[i]->id].sharded() == sharded; ++i)
      end += order[i]->grad_size();
    sq[sharded ? 0 : 1] += sum_of_squares(cvec(g.data() + begin, end - begin));
  }
  grid->tp().allreduce_sum(&sq[0], 1);
  return std::sqrt(sq[0] + sq[1]);
}

StepStats train_step(Model& model, AdamW& optimizer, float lr, double grad_clip, const StepContext& ctx) {
  StepStats s;
  const double comm0 = comm_seconds(ctx.grid);
  AsyncAllreduce* channel = ctx.grid ? ctx.grid->dp_async() : nullptr;
  std::optional<GradientReducer> reducer;
  if (channel) {
    reducer.emplace(*channel, ctx.reduction);
    reducer->begin(model.grads().data(), int64_t(model.grads().extent(0)));
  }
  auto t0 = Clock::now();
  s.loss = model.forward_backward(ctx.global_tokens,
                                  reducer ? [&](int64_t n) { reducer->complete(n); } : std::function<void(int64_t)>());
  Kokkos::fence();
  double compute = seconds_since(t0) - (comm_seconds(ctx.grid) - comm0);
  if (ctx.slow_factor > 1.0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(compute * (ctx.slow_factor - 1.0)));
    compute *= ctx.slow_factor;
  }

  s.grad_bytes = int64_t(model.grads().extent(0)) * int64_t(sizeof(float));
  if (reducer) {
    // A barrier first, so the wait for the slowest rank's backward pass and the sum's unhidden rest are told apart.
    const double before = ctx.grid->dp().stats().seconds;
    ctx.grid->dp().barrier();
    s.wait_seconds = ctx.grid->dp().stats().seconds - before;
    const ReductionStats r = reducer->finish();
    s.dp_exposed_seconds = r.exposed_seconds;
    s.dp_reduce_seconds = r.busy_seconds;
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
  s.comm_seconds = comm_seconds(ctx.grid) - comm0 - s.wait_seconds + s.dp_exposed_seconds;
  return s;
}

}  // namespace est
