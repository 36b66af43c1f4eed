#pragma once
// Draws each step's subnetwork (est-method.md §2, §4) from a counter-based generator keyed on the seed, so the
// draw is a pure function of (seed, step, stage): every rank and every resumed run get the same subnetwork
// without communicating.
#include <cstdint>
#include <vector>

#include "est/schedule.hpp"
#include "est/subnetwork.hpp"
#include "model/shape.hpp"

namespace est {

enum class LayerScaling {
  none,     // published: only the head sum and the MLP output carry 1/p
  inverse,  // stochastic-depth style: active layers' residual branches also carry 1/p_layers
};

class SubnetworkSampler {
 public:
  SubnetworkSampler(const ModelShape& shape, uint64_t seed, LayerScaling scaling);

  // Active layers, and in each the sorted head and neuron sets, with their inverted-dropout scales. A full stage
  // gives exactly Subnetwork::full(shape).
  Subnetwork sample(const StageSpec& stage, int64_t step) const;

  // The active-layer mask of the same draw, without drawing heads and neurons.
  std::vector<bool> sample_layers(const StageSpec& stage, int64_t step) const;

 private:
  std::vector<int> draw_subset(int k, int n, int64_t step, uint32_t purpose, uint32_t stream) const;

  ModelShape shape_;
  uint64_t seed_;
  LayerScaling scaling_;
};

}  // namespace est
