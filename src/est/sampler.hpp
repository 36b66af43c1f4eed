#pragma once
// Draws each step's subnetwork (est-method.md §2, §4) from a counter-based generator keyed on the seed, so the
// draw is a pure function of (seed, step, stage): every rank and every resumed run get the same subnetwork
// without communicating.
#include <cstdint>
#include <vector>

#include "est/head_units.hpp"
#include "est/schedule.hpp"
#include "est/subnetwork.hpp"
#include "model/shape.hpp"

namespace est {

enum class LayerScaling {
  none,     // published: only the head sum and the MLP output carry 1/p
  inverse,  // stochastic-depth style: active layers' residual branches also carry 1/p_layers
};

// Whether `tp_ranks` ranks get balanced shares of draws over `strata` (see below): each rank holds whole strata,
// and more than one only when their number is a power of two.
inline bool strata_fit_ranks(int strata, int tp_ranks) {
  return strata % tp_ranks == 0 && (tp_ranks == 1 || strata == tp_ranks || (strata & (strata - 1)) == 0);
}

class SubnetworkSampler {
 public:
  // Heads and neurons are drawn stratified over `strata` equal contiguous groups: every group gets k / strata of
  // the k units, and the k % strata left over go to a run of the groups that starts at a random place, taken in
  // bit-reversed order when `strata` is a power of two. A tensor-parallel rank holds strata / tp whole groups, so
  // on any power-of-two tp dividing `strata` (or tp = strata) every rank gets k / tp units, +-1: one draw, made
  // without knowing the layout, balances every layout. Every unit keeps inclusion probability k / N.
  SubnetworkSampler(const ModelShape& shape, uint64_t seed, LayerScaling scaling, int strata = 1,
                    HeadUnit unit = HeadUnit::kv_group);

  // Active layers, and in each the sorted head and neuron sets, with their inverted-dropout scales. A full stage
  // gives exactly Subnetwork::full(shape). With `ranks` (the tensor-parallel ranks, e.g. the fastest first; their
  // number dividing the strata), the leftover units go round the ranks in that order in every layer instead, and
  // each rank's part is scaled by its own N_r / k_r, so the estimate stays unbiased in every step while the extra
  // work sits where the load balancer wants it.
  Subnetwork sample(const StageSpec& stage, int64_t step, const std::vector<int>* ranks = nullptr) const;

  int strata() const { return strata_; }
  HeadUnits units() const { return units_; }
  // The query heads a layer of a stage keeping p_heads of the head units runs.
  int heads_for(double p_heads) const;
  // The key/value heads those query heads read: theirs for KV-group draws; for query-head draws the expected
  // number of groups a uniform draw of that many heads touches (the strata ignored).
  double kv_heads_for(double p_heads) const;

  // The active-layer mask of the same draw, without drawing heads and neurons.
  std::vector<bool> sample_layers(const StageSpec& stage, int64_t step) const;

 private:
  std::vector<int> draw_subset(int k, int n, int64_t step, uint32_t purpose, uint32_t stream) const;
  // k of n units in `strata_` contiguous groups, as above; `slot` is the layer (or one past the last for a
  // draw shared by all layers).
  std::vector<int> draw_stratified(int k, int n, int64_t step, uint32_t purpose, int slot,
                                   const std::vector<int>* ranks) const;
  // Which strata take one of the k % strata leftovers, as above.
  std::vector<bool> extra_strata(int k, int64_t step, uint32_t purpose, int slot, const std::vector<int>* ranks) const;

  ModelShape shape_;
  uint64_t seed_;
  LayerScaling scaling_;
  int strata_;
  HeadUnits units_;
};

}  // namespace est
