// The subnetwork sampler: exact set sizes, inclusion frequencies, reproducibility across ranks and restarts, and
// the stage options (shared draws, kept layers, Bernoulli layers, scales).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "est/sampler.hpp"

namespace est {
namespace {

ModelShape shape(int n_layer, int n_head, int n_embd) {
  ModelShape s;
  s.n_layer = n_layer;
  s.n_head = n_head;
  s.n_embd = n_embd;
  return s;
}

StageSpec stage(double p_heads, double p_mlp, double p_layers) {
  StageSpec s;
  s.p_heads = p_heads;
  s.p_mlp = p_mlp;
  s.p_layers = p_layers;
  return s;
}

void expect_same(const Subnetwork& a, const Subnetwork& b, const std::string& what) {
  ASSERT_EQ(a.layers.size(), b.layers.size()) << what;
  for (size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_EQ(a.layers[l].active, b.layers[l].active) << what << " layer " << l;
    EXPECT_EQ(a.layers[l].heads, b.layers[l].heads) << what << " layer " << l;
    EXPECT_EQ(a.layers[l].neurons, b.layers[l].neurons) << what << " layer " << l;
  }
  EXPECT_EQ(a.head_scale, b.head_scale) << what;
  EXPECT_EQ(a.mlp_scale, b.mlp_scale) << what;
  EXPECT_EQ(a.layer_scale, b.layer_scale) << what;
}

void expect_sorted_subset(const std::vector<int>& v, size_t k, int n, const char* what) {
  ASSERT_EQ(v.size(), k) << what;
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_GE(v[i], 0) << what;
    EXPECT_LT(v[i], n) << what;
    if (i > 0) {
      EXPECT_LT(v[i - 1], v[i]) << what << ": not sorted and unique";
    }
  }
}

// COUNT successes in TRIALS must be within 5 standard deviations of a Binomial(TRIALS, P) mean.
void expect_binomial(int64_t count, int64_t trials, double p, const std::string& what) {
  const double mean = trials * p, sd = std::sqrt(trials * p * (1 - p));
  EXPECT_NEAR(double(count), mean, 5 * sd + 1e-9) << what << ": " << count << " of " << trials;
}

TEST(Sampler, FullStageIsTheFullModel) {
  const ModelShape s = shape(12, 12, 768);
  const Subnetwork full = Subnetwork::full(s);
  for (auto scaling : {LayerScaling::none, LayerScaling::inverse}) {
    const SubnetworkSampler sampler(s, 1337, scaling);
    StageSpec bernoulli;
    bernoulli.layer_sampling = LayerSampling::bernoulli;
    for (int64_t step : {0, 1, 17, 123456}) {
      expect_same(sampler.sample(StageSpec{}, step), full, "full stage");
      expect_same(sampler.sample(bernoulli, step), full, "bernoulli, p_layers = 1");
    }
  }
  const Subnetwork sub = SubnetworkSampler(s, 1, LayerScaling::inverse).sample(StageSpec{}, 5);
  EXPECT_EQ(sub.head_scale, 1.0f);
  EXPECT_EQ(sub.mlp_scale, 1.0f);
  EXPECT_EQ(sub.layer_scale, 1.0f);
}

TEST(Sampler, ExactSetSizesOfSortedUniqueIndices) {
  const ModelShape s = shape(12, 12, 768);
  const SubnetworkSampler sampler(s, 42, LayerScaling::none);
  // round(0.3 * 12) = 4 heads, round(0.7 * 3072) = 2150 neurons, round(0.4 * 12) = 5 layers.
  for (const StageSpec& st : {stage(0.5, 0.5, 0.5), stage(0.3, 0.7, 0.4), stage(0.5, 0.5, 1.0)}) {
    const int k_heads = count_for(st.p_heads, 12), k_neurons = count_for(st.p_mlp, 3072);
    const int k_layers = count_for(st.p_layers, 12);
    for (int64_t step = 0; step < 50; ++step) {
      const Subnetwork sub = sampler.sample(st, step);
      ASSERT_EQ(sub.layers.size(), 12u);
      EXPECT_EQ(sub.active_layers(), k_layers);
      for (const LayerSelection& l : sub.layers) {
        if (!l.active) {
          EXPECT_TRUE(l.heads.empty() && l.neurons.empty());
          continue;
        }
        expect_sorted_subset(l.heads, k_heads, 12, "heads");
        expect_sorted_subset(l.neurons, k_neurons, 3072, "neurons");
      }
    }
  }
  EXPECT_EQ(count_for(0.3, 12), 4);
  EXPECT_EQ(count_for(0.7, 3072), 2150);
  EXPECT_EQ(count_for(0.4, 12), 5);
}

TEST(Sampler, EachIndexIsIncludedWithFrequencyP) {
  const ModelShape s = shape(8, 8, 16);  // 64 neurons
  const SubnetworkSampler sampler(s, 7, LayerScaling::none);
  const StageSpec st = stage(0.5, 0.25, 0.75);  // 4 of 8 heads, 16 of 64 neurons, 6 of 8 layers
  const int steps = 2000;
  std::vector<int64_t> layer_on(8, 0), head_on(8 * 8, 0), neuron_on(8 * 64, 0);
  for (int64_t step = 0; step < steps; ++step) {
    const Subnetwork sub = sampler.sample(st, step);
    for (int l = 0; l < 8; ++l) {
      if (!sub.layers[l].active) continue;
      ++layer_on[l];
      for (int h : sub.layers[l].heads) ++head_on[l * 8 + h];
      for (int j : sub.layers[l].neurons) ++neuron_on[l * 64 + j];
    }
  }
  for (int l = 0; l < 8; ++l) {
    expect_binomial(layer_on[l], steps, 0.75, "layer " + std::to_string(l));
    // Given that its layer is active, an index is in the set with probability k / N.
    for (int h = 0; h < 8; ++h) expect_binomial(head_on[l * 8 + h], layer_on[l], 0.5, "head");
    for (int j = 0; j < 64; ++j) expect_binomial(neuron_on[l * 64 + j], layer_on[l], 0.25, "neuron");
  }
}

TEST(Sampler, BernoulliLayersAreKeptWithProbabilityP) {
  const ModelShape s = shape(12, 4, 8);
  const SubnetworkSampler sampler(s, 99, LayerScaling::none);
  StageSpec st = stage(1, 1, 0.3);
  st.layer_sampling = LayerSampling::bernoulli;
  const int steps = 2000;
  std::vector<int64_t> on(12, 0);
  int64_t total = 0;
  int min_active = 12, max_active = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const std::vector<bool> active = sampler.sample_layers(st, step);
    int n = 0;
    for (int l = 0; l < 12; ++l) {
      on[l] += active[l];
      n += active[l];
    }
    total += n;
    min_active = std::min(min_active, n);
    max_active = std::max(max_active, n);
  }
  expect_binomial(total, int64_t(steps) * 12, 0.3, "all layers");
  for (int l = 0; l < 12; ++l) expect_binomial(on[l], steps, 0.3, "layer " + std::to_string(l));
  EXPECT_LT(min_active, max_active) << "the active count should vary from step to step";
}

TEST(Sampler, EveryRankAndEveryRestartDrawsTheSameSubnetwork) {
  const ModelShape s = shape(12, 12, 768);
  const StageSpec st = stage(0.5, 0.5, 0.5);
  const SubnetworkSampler rank0(s, 2024, LayerScaling::none), rank1(s, 2024, LayerScaling::none);
  std::vector<Subnetwork> in_order;
  for (int64_t step = 0; step < 40; ++step) in_order.push_back(rank0.sample(st, step));
  // A resumed run starts anywhere: draw the same steps in reverse from another object.
  for (int64_t step = 39; step >= 0; --step) {
    const Subnetwork again = rank1.sample(st, step);
    expect_same(again, in_order[step], "step " + std::to_string(step));
    EXPECT_EQ(rank1.sample_layers(st, step).size(), 12u);
    for (int l = 0; l < 12; ++l) EXPECT_EQ(rank1.sample_layers(st, step)[l], again.layers[l].active);
  }
  // The draw changes with the step and with the seed.
  EXPECT_NE(in_order[0].layers[0].neurons, in_order[1].layers[0].neurons);
  const Subnetwork other_seed = SubnetworkSampler(s, 2025, LayerScaling::none).sample(st, 0);
  bool differs = false;
  for (int l = 0; l < 12; ++l) {
    differs = differs || other_seed.layers[l].active != in_order[0].layers[l].active ||
              other_seed.layers[l].neurons != in_order[0].layers[l].neurons;
  }
  EXPECT_TRUE(differs);
}

TEST(Sampler, SharedDrawUsesOneSetForAllLayers) {
  const ModelShape s = shape(6, 12, 64);
  const SubnetworkSampler sampler(s, 3, LayerScaling::none);
  StageSpec shared = stage(0.5, 0.5, 1);
  shared.shared_draw = true;
  StageSpec independent = shared;
  independent.shared_draw = false;
  for (int64_t step = 0; step < 20; ++step) {
    const Subnetwork a = sampler.sample(shared, step);
    for (const LayerSelection& l : a.layers) {
      EXPECT_EQ(l.heads, a.layers[0].heads);
      EXPECT_EQ(l.neurons, a.layers[0].neurons);
    }
    const Subnetwork b = sampler.sample(independent, step);
    bool differ = false;
    for (const LayerSelection& l : b.layers) differ = differ || l.neurons != b.layers[0].neurons;
    EXPECT_TRUE(differ) << "independent draws gave the same neurons in every layer at step " << step;
  }
}

TEST(Sampler, KeptLayersAlwaysRunAndCountTowardTheTotal) {
  const ModelShape s = shape(12, 4, 8);
  const SubnetworkSampler sampler(s, 11, LayerScaling::none);
  StageSpec uniform = stage(1, 1, 0.25);  // 3 of 12 layers
  uniform.keep_first_layer = uniform.keep_last_layer = true;
  StageSpec bernoulli = uniform;
  bernoulli.layer_sampling = LayerSampling::bernoulli;
  bernoulli.p_layers = 0.1;
  std::vector<int> middle_on(12, 0);
  for (int64_t step = 0; step < 500; ++step) {
    const std::vector<bool> u = sampler.sample_layers(uniform, step);
    EXPECT_TRUE(u.front() && u.back());
    int n = 0;
    for (int l = 0; l < 12; ++l) {
      n += u[l];
      middle_on[l] += u[l];
    }
    EXPECT_EQ(n, 3);
    const std::vector<bool> b = sampler.sample_layers(bernoulli, step);
    EXPECT_TRUE(b.front() && b.back());
  }
  // The third layer is drawn uniformly from the ten in between.
  for (int l = 1; l < 11; ++l) expect_binomial(middle_on[l], 500, 0.1, "middle layer " + std::to_string(l));

  StageSpec first_only = stage(1, 1, 0.5);
  first_only.keep_first_layer = true;
  for (int64_t step = 0; step < 50; ++step) {
    const Subnetwork sub = sampler.sample(first_only, step);
    EXPECT_TRUE(sub.layers[0].active);
    EXPECT_EQ(sub.active_layers(), 6);
  }
}

TEST(Sampler, ScalesAreInverseRates) {
  const ModelShape s = shape(4, 4, 16);
  const Subnetwork none = SubnetworkSampler(s, 0, LayerScaling::none).sample(stage(0.5, 0.25, 0.5), 0);
  EXPECT_EQ(none.head_scale, 2.0f);
  EXPECT_EQ(none.mlp_scale, 4.0f);
  EXPECT_EQ(none.layer_scale, 1.0f);
  const Subnetwork inverse = SubnetworkSampler(s, 0, LayerScaling::inverse).sample(stage(0.5, 0.25, 0.5), 0);
  EXPECT_EQ(inverse.layer_scale, 2.0f);
  expect_same(SubnetworkSampler(s, 0, LayerScaling::inverse).sample(stage(0.5, 1, 1), 3),
              SubnetworkSampler(s, 0, LayerScaling::none).sample(stage(0.5, 1, 1), 3), "p_layers = 1");
  const Subnetwork heads_only = SubnetworkSampler(s, 0, LayerScaling::none).sample(stage(0.5, 1, 1), 0);
  EXPECT_EQ(heads_only.mlp_scale, 1.0f);
  EXPECT_EQ(heads_only.layers[0].neurons.size(), 64u);
}

// Heads (or neurons) of each stratum in one layer's set.
std::vector<int> per_stratum(const std::vector<int>& units, int n, int strata) {
  std::vector<int> count(strata, 0);
  for (int u : units) ++count[u / (n / strata)];
  return count;
}

TEST(Sampler, StratifiedDrawsGiveEveryStratumItsShareAndEveryUnitProbabilityP) {
  const ModelShape s = shape(4, 12, 24);  // 12 heads, 96 neurons
  const SubnetworkSampler sampler(s, 11, LayerScaling::none, 2);
  const StageSpec st = stage(0.25, 0.25, 1);  // 3 of 12 heads: an odd count over 2 strata; 24 of 96 neurons
  const int steps = 2000;
  std::vector<int64_t> head_on(12, 0);
  int64_t first_stratum_extra = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const Subnetwork sub = sampler.sample(st, step);
    for (const LayerSelection& l : sub.layers) {
      const auto heads = per_stratum(l.heads, 12, 2), neurons = per_stratum(l.neurons, 96, 2);
      EXPECT_LE(std::abs(heads[0] - heads[1]), 1);
      EXPECT_EQ(neurons[0], 12);
      EXPECT_EQ(neurons[1], 12);
      first_stratum_extra += heads[0] == 2;
      for (int h : l.heads) ++head_on[h];
    }
    EXPECT_EQ(sub.head_scale, 4.0f);
    EXPECT_TRUE(sub.head_scale_by_rank.empty());
  }
  expect_binomial(first_stratum_extra, 4 * steps, 0.5, "the leftover head goes to either stratum alike");
  for (int h = 0; h < 12; ++h) expect_binomial(head_on[h], 4 * steps, 0.25, "head " + std::to_string(h));
}

TEST(Sampler, PlacedLeftoversKeepTheEstimateUnbiasedThroughPerStratumScales) {
  const ModelShape s = shape(1, 12, 24);
  const SubnetworkSampler sampler(s, 5, LayerScaling::none, 2);
  const StageSpec st = stage(0.25, 1, 1);
  const std::vector<int> fastest_first = {1, 0};
  std::vector<double> value(12);
  double total = 0;
  for (int h = 0; h < 12; ++h) total += value[h] = 1.0 + h * h;  // uneven, so a biased estimate shows
  double with_scales = 0, with_one_scale = 0;
  const int steps = 4000;
  for (int64_t step = 0; step < steps; ++step) {
    const Subnetwork sub = sampler.sample(st, step, &fastest_first);
    EXPECT_EQ(per_stratum(sub.layers[0].heads, 12, 2), (std::vector<int>{1, 2})) << "the extra head goes to stratum 1";
    ASSERT_EQ(sub.head_scale_by_rank, (std::vector<float>{6.0f, 3.0f}));
    for (int h : sub.layers[0].heads) {
      with_scales += sub.head_scale_by_rank[h / 6] * value[h] / steps;
      with_one_scale += sub.head_scale * value[h] / steps;
    }
    EXPECT_EQ(sub.local_part(1, 2, 12, 96).head_scale, 3.0f);
  }
  EXPECT_NEAR(with_scales, total, 0.03 * total);
  EXPECT_GT(std::abs(with_one_scale - total), 0.1 * total) << "one scale for unequal quotas is biased";
}

TEST(Sampler, OneDrawGivesEveryPowerOfTwoLayoutBalancedRanksAndEveryUnitProbabilityP) {
  const ModelShape s = shape(3, 16, 32);  // 16 heads, 128 neurons, 8 strata
  const SubnetworkSampler sampler(s, 3, LayerScaling::none, 8);
  const StageSpec st = stage(0.4375, 0.3, 1);  // 7 of 16 heads, 38 of 128 neurons: leftovers 7 and 6 of 8
  const int steps = 1500;
  std::vector<int64_t> head_on(16, 0), neuron_on(128, 0);
  for (int64_t step = 0; step < steps; ++step) {
    const Subnetwork sub = sampler.sample(st, step);
    for (const LayerSelection& l : sub.layers) {
      for (int tp : {1, 2, 4, 8}) {
        for (auto [units, n, k] : {std::tuple{&l.heads, 16, 7}, std::tuple{&l.neurons, 128, 38}}) {
          for (int c : per_stratum(*units, n, tp)) {
            ASSERT_GE(c, k / tp) << "tp " << tp << ", step " << step;
            ASSERT_LE(c, (k + tp - 1) / tp) << "tp " << tp << ", step " << step;
          }
        }
      }
      for (int h : l.heads) ++head_on[h];
      for (int j : l.neurons) ++neuron_on[j];
    }
  }
  for (int h = 0; h < 16; ++h) expect_binomial(head_on[h], 3 * steps, 7.0 / 16, "head " + std::to_string(h));
  for (int j = 0; j < 128; j += 9) expect_binomial(neuron_on[j], 3 * steps, 38.0 / 128, "neuron " + std::to_string(j));
}

TEST(Sampler, LeftoversPlacedOnRanksThatHoldSeveralStrataKeepTheEstimateUnbiased) {
  const ModelShape s = shape(1, 8, 16);  // 8 heads in 4 strata, on 2 ranks
  const SubnetworkSampler sampler(s, 9, LayerScaling::none, 4);
  const StageSpec st = stage(0.375, 1, 1);  // 3 of 8 heads: 3 leftovers, two of them to the fastest rank 1
  const std::vector<int> fastest_first = {1, 0};
  std::vector<double> value(8);
  double total = 0;
  for (int h = 0; h < 8; ++h) total += value[h] = 1.0 + h * h;
  double estimate = 0;
  const int steps = 4000;
  for (int64_t step = 0; step < steps; ++step) {
    const Subnetwork sub = sampler.sample(st, step, &fastest_first);
    ASSERT_EQ(per_stratum(sub.layers[0].heads, 8, 2), (std::vector<int>{1, 2}));
    ASSERT_EQ(sub.head_scale_by_rank, (std::vector<float>{4.0f, 2.0f}));
    for (int h : sub.layers[0].heads) estimate += sub.head_scale_by_rank[h / 4] * value[h] / steps;
  }
  EXPECT_NEAR(estimate, total, 0.03 * total);
  const std::vector<int> three = {0, 1, 2};
  EXPECT_THROW(sampler.sample(st, 0, &three), std::invalid_argument) << "3 ranks cannot hold 4 strata";
}

}  // namespace
}  // namespace est
