#include "est/sampler.hpp"

#include <algorithm>
#include <numeric>

#include "philox.hpp"

namespace est {

namespace {

// What a stream of words is drawn for; part of the Philox counter, so no two draws of a step share words.
enum Purpose : uint32_t { kLayers = 1, kHeads = 2, kNeurons = 3 };
// The stream of a draw made once per step rather than once per layer.
constexpr uint32_t kShared = 0xFFFFFF;

// Successive 32-bit words of one independent stream. Philox key: the seed; counter: low 64 bits the step,
// high 64 bits purpose (8 bits) | stream (24 bits: layer index or kShared) | block index (32 bits).
class Stream {
 public:
  Stream(uint64_t seed, int64_t step, uint32_t purpose, uint32_t stream)
      : seed_(seed),
        step_(static_cast<uint64_t>(step)),
        id_((uint64_t(purpose) << 56) | (uint64_t(stream & 0xFFFFFFu) << 32)) {}

  uint32_t next() {
    if (used_ == 4) {
      words_ = philox4x32(seed_, step_, id_ | block_++);
      used_ = 0;
    }
    return words_.v[used_++];
  }

  // Uniform in [0, bound) with no modulo bias: Lemire's multiply-shift, rejecting the short low range.
  uint32_t below(uint32_t bound) {
    uint64_t m = uint64_t(next()) * bound;
    if (static_cast<uint32_t>(m) < bound) {
      const uint32_t threshold = (0u - bound) % bound;
      while (static_cast<uint32_t>(m) < threshold) m = uint64_t(next()) * bound;
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // Uniform in (0, 1], so `uniform() <= 1` always holds.
  double uniform() {
    const uint64_t hi = next();
    return uniform_from_u64((hi << 32) | next());
  }

 private:
  uint64_t seed_, step_, id_;
  uint32_t block_ = 0;
  Philox4 words_{};
  int used_ = 4;
};

}  // namespace

SubnetworkSampler::SubnetworkSampler(const ModelShape& shape, uint64_t seed, LayerScaling scaling)
    : shape_(shape), seed_(seed), scaling_(scaling) {}

// K of 0..N-1, uniformly, in increasing order: a partial Fisher-Yates shuffle marks the chosen, then one pass
// collects them in order (linear in N, cheaper than sorting up to 3072 neurons).
std::vector<int> SubnetworkSampler::draw_subset(int k, int n, int64_t step, uint32_t purpose, uint32_t stream) const {
  std::vector<int> index(n);
  std::iota(index.begin(), index.end(), 0);
  if (k >= n) return index;
  // Drawing the n - k left out instead when fewer: the complement of a uniform subset is uniform too.
  const bool leave_out = 2 * k > n;
  const int draws = leave_out ? n - k : k;
  Stream random(seed_, step, purpose, stream);
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
      active[l] = active[l] || Stream(seed_, step, kLayers, l).uniform() <= stage.p_layers;
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

Subnetwork SubnetworkSampler::sample(const StageSpec& stage, int64_t step) const {
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
    // A shared draw is the same stream read by every layer.
    const uint32_t stream = stage.shared_draw ? kShared : static_cast<uint32_t>(l);
    layer.heads = draw_subset(k_heads, shape_.n_head, step, kHeads, stream);
    layer.neurons = draw_subset(k_neurons, n_neurons, step, kNeurons, stream);
  }
  sub.head_scale = static_cast<float>(1.0 / stage.p_heads);
  sub.mlp_scale = static_cast<float>(1.0 / stage.p_mlp);
  sub.layer_scale = scaling_ == LayerScaling::inverse ? static_cast<float>(1.0 / stage.p_layers) : 1.0f;
  return sub;
}

}  // namespace est
