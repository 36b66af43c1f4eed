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
  // Heads and neurons are drawn stratified over `strata` equal groups (the tensor-parallel ranks, which hold
  // them in contiguous blocks): every group gets k / strata of the k units, and the k % strata left over go to
  // groups in turn (rotating with the step and the layer), so every unit keeps inclusion probability k / N and
  // no rank waits on another's larger share for long.
  SubnetworkSampler(const ModelShape& shape, uint64_t seed, LayerScaling scaling, int strata = 1);

  // Active layers, and in each the sorted head and neuron sets, with their inverted-dropout scales. A full stage
  // gives exactly Subnetwork::full(shape). With `first` (a permutation of the strata, e.g. the fastest
  // tensor-parallel ranks first), the leftover units go to the first strata in that order in every layer
  // instead of in turn, and each stratum is scaled by its own N_s / k_s, so the estimate stays unbiased in every
  // step while the extra work sits where the load balancer wants it.
  Subnetwork sample(const StageSpec& stage, int64_t step, const std::vector<int>* first = nullptr) const;

  // The active-layer mask of the same draw, without drawing heads and neurons.
  std::vector<bool> sample_layers(const StageSpec& stage, int64_t step) const;

 private:
  std::vector<int> draw_subset(int k, int n, int64_t step, uint32_t purpose, uint32_t stream) const;
  // k of n units in `strata_` contiguous groups, as above; `slot` is the layer (or one past the last for a
  // draw shared by all layers).
  std::vector<int> draw_stratified(int k, int n, int64_t step, uint32_t purpose, int slot,
                                   const std::vector<int>* first) const;
  // Which strata take one of the k % strata leftovers: in turn, or the first of `first`.
  std::vector<bool> extra_strata(int k, int64_t step, int slot, const std::vector<int>* first) const;

  ModelShape shape_;
  uint64_t seed_;
  LayerScaling scaling_;
  int strata_;
};

}  // namespace est
