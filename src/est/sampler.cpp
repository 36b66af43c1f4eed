#include "est/sampler.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "random_stream.hpp"

namespace est {

namespace {

// What a stream of words is drawn for; part of the Philox counter, so no two draws of a step share words.
enum Purpose : uint32_t { kLayers = 1, kHeads = 2, kNeurons = 3, kHeadLeftovers = 4, kNeuronLeftovers = 5 };
// The stream of a draw made once per step rather than once per layer.
constexpr uint32_t kShared = 0xFFFFFF;

// 0..n-1 with the bits of each index reversed when n is a power of two (0 4 2 6 1 5 3 7): any run of consecutive
// entries, read cyclically, meets every aligned block of n / 2^j indices equally often, +-1. Otherwise in order.
std::vector<int> leftover_order(int n) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (n & (n - 1)) return order;
  int bits = 0;
  while ((1 << bits) < n) ++bits;
  for (int i = 0; i < n; ++i) {
    int r = 0;
    for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
    order[i] = r;
  }
  return order;
}

}  // namespace

SubnetworkSampler::SubnetworkSampler(const ModelShape& shape, uint64_t seed, LayerScaling scaling, int strata,
                                     HeadUnit unit)
    : shape_(shape), seed_(seed), scaling_(scaling), strata_(strata), units_(head_units(shape, unit)) {}

int SubnetworkSampler::heads_for(double p_heads) const { return count_for(p_heads, units_.count) * units_.size; }

double SubnetworkSampler::kv_heads_for(double p_heads) const {
  const int k = heads_for(p_heads), n = shape_.n_head, g = shape_.group_size();
  if (units_.size == g) return double(k) / g;
  // 1 - P(a group has none of the k): C(n - g, k) / C(n, k) = prod_{i<g} (n - k - i) / (n - i).
  double none = 1;
  for (int i = 0; i < g; ++i) none *= std::max(0.0, double(n - k - i) / double(n - i));
  return shape_.kv_heads() * (1 - none);
}

// The e-th leftover goes to the group of ranks[e % groups] (one group of all the strata without `ranks`), to the
// (e / groups)-th of its strata counted from a random start in leftover order.
std::vector<bool> SubnetworkSampler::extra_strata(int k, int64_t step, uint32_t purpose, int slot,
                                                  const std::vector<int>* ranks) const {
  const int extra = k % strata_;
  std::vector<bool> gets(strata_, false);
  if (extra == 0) return gets;
  const int groups = ranks ? int(ranks->size()) : 1, per = strata_ / groups;
  const std::vector<int> order = leftover_order(per);
  RandomStream random(seed_, step, purpose == kHeads ? kHeadLeftovers : kNeuronLeftovers, static_cast<uint32_t>(slot));
  std::vector<int> start(groups);
  for (int& s : start) s = int(random.below(static_cast<uint32_t>(per)));
  for (int e = 0; e < extra; ++e) {
    const int g = e % groups, group = ranks ? (*ranks)[g] : 0;
    gets[group * per + order[(start[g] + e / groups) % per]] = true;
  }
  return gets;
}

std::vector<int> SubnetworkSampler::draw_stratified(int k, int n, int64_t step, uint32_t purpose, int slot,
                                                    const std::vector<int>* ranks) const {
  const int per = n / strata_, base = k / strata_;
  const std::vector<bool> extra = extra_strata(k, step, purpose, slot, ranks);
  std::vector<int> chosen;
  for (int s = 0; s < strata_; ++s) {
    const uint32_t stream = static_cast<uint32_t>(slot * strata_ + s);
    for (int j : draw_subset(base + extra[s], per, step, purpose, stream)) chosen.push_back(s * per + j);
  }
  return chosen;
}

// K of 0..N-1, uniformly, in increasing order: a partial Fisher-Yates shuffle marks the chosen, then one pass
// collects them in order (linear in N, cheaper than sorting up to 3072 neurons).
std::vector<int> SubnetworkSampler::draw_subset(int k, int n, int64_t step, uint32_t purpose, uint32_t stream) const {
  std::vector<int> index(n);
  std::iota(index.begin(), index.end(), 0);
  if (k >= n) return index;
  // Drawing the n - k left out instead when fewer: the complement of a uniform subset is uniform too.
  const bool leave_out = 2 * k > n;
  const int draws = leave_out ? n - k : k;
  RandomStream random(seed_, step, purpose, stream);
  std::vector<char> chosen(n, leave_out);
  for (int i = 0; i < draws; ++i) {
    std::swap(index[i], index[i + random.below(static_cast<uint32_t>(n - i))]);
    chosen[index[i]] = !leave_out;
  }
  // Branch-free: which indices are chosen is random, so a branch would mispredict half the time.
  int count = 0;
  for (int j = 0; j < n; ++j) {
    index[count] = j;
    count += chosen[j];
  }
  index.resize(k);
  return index;
}

std::vector<bool> SubnetworkSampler::sample_layers(const StageSpec& stage, int64_t step) const {
  const int n = shape_.n_layer;
  std::vector<bool> active(n, false);
  active[0] = stage.keep_first_layer;
  active[n - 1] = active[n - 1] || stage.keep_last_layer;
  if (stage.layer_sampling == LayerSampling::bernoulli) {
    for (int l = 0; l < n; ++l) {
      active[l] = active[l] || RandomStream(seed_, step, kLayers, l).uniform() <= stage.p_layers;
    }
    return active;
  }
  // Kept layers count toward the k active ones; the rest are drawn from the other layers.
  std::vector<int> others;
  for (int l = 0; l < n; ++l) {
    if (!active[l]) others.push_back(l);
  }
  const int forced = n - static_cast<int>(others.size());
  const int k = std::max(0, count_for(stage.p_layers, n) - forced);
  for (int j : draw_subset(k, static_cast<int>(others.size()), step, kLayers, kShared)) active[others[j]] = true;
  return active;
}

Subnetwork SubnetworkSampler::sample(const StageSpec& stage, int64_t step, const std::vector<int>* ranks) const {
  if (ranks && (ranks->empty() || strata_ % int(ranks->size())))
    throw std::invalid_argument("sample: " + std::to_string(ranks ? ranks->size() : 0) +
                                " ranks do not divide the " + std::to_string(strata_) + " strata");
  const std::vector<bool> active = sample_layers(stage, step);
  const int n_neurons = shape_.neurons();
  const int k_units = count_for(stage.p_heads, units_.count);
  const int k_neurons = count_for(stage.p_mlp, n_neurons);
  Subnetwork sub;
  sub.layers.resize(shape_.n_layer);
  for (int l = 0; l < shape_.n_layer; ++l) {
    LayerSelection& layer = sub.layers[l];
    layer.active = active[l];
    if (!layer.active) continue;
    // A shared draw is the same streams read by every layer.
    const int slot = stage.shared_draw ? shape_.n_layer : l;
    for (int u : draw_stratified(k_units, units_.count, step, kHeads, slot, ranks))
      for (int h = u * units_.size; h < (u + 1) * units_.size; ++h) layer.heads.push_back(h);
    layer.neurons = draw_stratified(k_neurons, n_neurons, step, kNeurons, slot, ranks);
  }
  sub.head_scale = static_cast<float>(1.0 / stage.p_heads);
  sub.mlp_scale = static_cast<float>(1.0 / stage.p_mlp);
  // Fixed unequal quotas: a rank of N_r units that keeps k_r is scaled by N_r / k_r. Its quota does not depend on
  // which of its strata took the leftovers.
  const auto by_rank = [&](int k, int n) {
    const int groups = int(ranks->size()), extra = k % strata_;
    std::vector<float> scale(groups);
    for (int g = 0; g < groups; ++g) {
      const int k_r = k / strata_ * (strata_ / groups) + extra / groups + (g < extra % groups);
      scale[(*ranks)[g]] = static_cast<float>(double(n / groups) / k_r);
    }
    return scale;
  };
  if (ranks && (k_units % strata_ || k_neurons % strata_)) {
    sub.head_scale_by_rank = by_rank(k_units, units_.count);
    sub.mlp_scale_by_rank = by_rank(k_neurons, n_neurons);
  }
  sub.layer_scale = scaling_ == LayerScaling::inverse ? static_cast<float>(1.0 / stage.p_layers) : 1.0f;
  return sub;
}

}  // namespace est
