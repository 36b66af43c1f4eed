#include "est/sampler.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "random_stream.hpp"

namespace est {

namespace {

// What a stream of words is drawn for; part of the Philox counter, so no two draws of a step share words.
enum Purpose : uint32_t { kLayers = 1, kHeads = 2, kNeurons = 3 };
// The stream of a draw made once per step rather than once per layer.
constexpr uint32_t kShared = 0xFFFFFF;

}  // namespace

SubnetworkSampler::SubnetworkSampler(const ModelShape& shape, uint64_t seed, LayerScaling scaling, int strata)
    : shape_(shape), seed_(seed), scaling_(scaling), strata_(strata) {}

std::vector<bool> SubnetworkSampler::extra_strata(int k, int64_t step, int slot, const std::vector<int>* first) const {
  const int extra = k % strata_;
  std::vector<bool> gets(strata_, false);
  for (int i = 0; i < extra; ++i) gets[first ? (*first)[i] : int((step + slot + i) % strata_)] = true;
  return gets;
}

std::vector<int> SubnetworkSampler::draw_stratified(int k, int n, int64_t step, uint32_t purpose, int slot,
                                                    const std::vector<int>* first) const {
  const int per = n / strata_, base = k / strata_;
  const std::vector<bool> extra = extra_strata(k, step, slot, first);
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

Subnetwork SubnetworkSampler::sample(const StageSpec& stage, int64_t step, const std::vector<int>* first) const {
  if (first && int(first->size()) != strata_)
    throw std::invalid_argument("sample: the strata order must name all " + std::to_string(strata_) + " strata");
  const std::vector<bool> active = sample_layers(stage, step);
  const int n_neurons = 4 * shape_.n_embd;
  const int k_heads = count_for(stage.p_heads, shape_.n_head);
  const int k_neurons = count_for(stage.p_mlp, n_neurons);
  Subnetwork sub;
  sub.layers.resize(shape_.n_layer);
  for (int l = 0; l < shape_.n_layer; ++l) {
    LayerSelection& layer = sub.layers[l];
    layer.active = active[l];
    if (!layer.active) continue;
    // A shared draw is the same streams read by every layer.
    const int slot = stage.shared_draw ? shape_.n_layer : l;
    layer.heads = draw_stratified(k_heads, shape_.n_head, step, kHeads, slot, first);
    layer.neurons = draw_stratified(k_neurons, n_neurons, step, kNeurons, slot, first);
  }
  sub.head_scale = static_cast<float>(1.0 / stage.p_heads);
  sub.mlp_scale = static_cast<float>(1.0 / stage.p_mlp);
  // Fixed unequal quotas: a stratum of N_s units that keeps k_s is scaled by N_s / k_s.
  const auto by_stratum = [&](int k, int n) {
    std::vector<float> scale(strata_);
    const std::vector<bool> extra = extra_strata(k, step, 0, first);
    for (int s = 0; s < strata_; ++s) scale[s] = static_cast<float>(double(n / strata_) / (k / strata_ + extra[s]));
    return scale;
  };
  if (first && (k_heads % strata_ || k_neurons % strata_)) {
    sub.head_scale_by_stratum = by_stratum(k_heads, shape_.n_head);
    sub.mlp_scale_by_stratum = by_stratum(k_neurons, n_neurons);
  }
  sub.layer_scale = scaling_ == LayerScaling::inverse ? static_cast<float>(1.0 / stage.p_layers) : 1.0f;
  return sub;
}

}  // namespace est
