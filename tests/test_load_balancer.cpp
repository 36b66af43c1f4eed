// The load balancer's policy (no MPI): batch shares follow the measured throughput of DP replicas, re-plans
// happen at stage transitions and after `patience` steps over the threshold, TP ranks are ordered fastest
// first, the cap and the global batch hold, and the state resumes the same decisions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "parallel/load_balancer.hpp"

namespace est {
namespace {

int64_t sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

// Timings of a step where each rank's compute is its replica's share times the rank's cost per sequence
// (world order: dp_rank * tp + tp_rank), optionally with a deterministic +-noise.
struct Sim {
  int dp, tp;
  std::vector<double> cost;  // seconds per sequence, per world rank
  double noise = 0;
  uint64_t state = 12345;

  double jitter() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);  // [0, 1)
    return 1 + noise * (2 * u - 1);
  }
  std::vector<RankTiming> step(const std::vector<int64_t>& shares) {
    std::vector<RankTiming> t(static_cast<size_t>(dp) * tp);
    for (int r = 0; r < dp; ++r)
      for (int k = 0; k < tp; ++k) {
        const size_t w = static_cast<size_t>(r) * tp + k;
        t[w].compute = static_cast<double>(shares[r]) * cost[w] * jitter();
      }
    double mx = 0;
    for (auto& x : t) mx = std::max(mx, x.compute);
    for (auto& x : t) x.comm = 0.01, x.wait = mx - x.compute;
    return t;
  }
};

std::vector<RankTiming> computes(const std::vector<double>& c) {
  std::vector<RankTiming> t;
  for (double x : c) t.push_back({x, 0, 0});
  return t;
}

TEST(LoadBalancer, InitialSharesAreEqualAndSumToTheBatch) {
  for (int dp : {1, 2, 3, 7, 8})
    for (int64_t batch : {7, 8, 12, 64, 100}) {
      LoadBalancer lb(dp, 2, batch, {});
      const auto& s = lb.batch_shares();
      ASSERT_EQ(s.size(), static_cast<size_t>(dp));
      EXPECT_EQ(sum(s), batch);
      const auto [mn, mx] = std::minmax_element(s.begin(), s.end());
      EXPECT_LE(*mx - *mn, 1);
      EXPECT_GE(*mn, batch >= dp ? 1 : 0);
      int64_t at = 0;
      for (int r = 0; r < dp; ++r) {
        EXPECT_EQ(lb.first_sequence(r), at);
        at += s[r];
      }
      EXPECT_EQ(lb.first_sequence(dp), batch);
      EXPECT_EQ(lb.tp_priority(), (std::vector<int>{0, 1}));
      EXPECT_EQ(lb.imbalance(), 1.0);
      EXPECT_EQ(lb.replans(), 0);
    }
  LoadBalancer lb(3, 1, 10, {});
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{4, 3, 3}));
  EXPECT_THROW(lb.first_sequence(4), std::out_of_range);
  EXPECT_THROW(lb.first_sequence(-1), std::out_of_range);
}

TEST(LoadBalancer, RejectsBadConfigurations) {
  EXPECT_THROW(LoadBalancer(0, 1, 8, {}), std::invalid_argument);
  EXPECT_THROW(LoadBalancer(2, 0, 8, {}), std::invalid_argument);
  EXPECT_THROW(LoadBalancer(2, 1, 0, {}), std::invalid_argument);
  EXPECT_THROW(LoadBalancer(2, 1, 8, {1.05, 0, 0}), std::invalid_argument);
  EXPECT_THROW(LoadBalancer(2, 1, 8, {0.9, 5, 0}), std::invalid_argument);
  EXPECT_THROW(LoadBalancer(2, 1, 9, {1.05, 5, 4}), std::invalid_argument);  // 2 x 4 < 9
  EXPECT_NO_THROW(LoadBalancer(2, 1, 8, {1.05, 5, 4}));
  LoadBalancer lb(2, 2, 8, {});
  EXPECT_THROW(lb.observe(computes({1, 1, 1}), false), std::invalid_argument);
  EXPECT_THROW(lb.observe(computes({1, 1, -1, 1}), false), std::invalid_argument);
  EXPECT_THROW(lb.observe(computes({1, 1, std::nan(""), 1}), false), std::invalid_argument);
  EXPECT_EQ(lb.imbalance(), 1.0);
}

TEST(LoadBalancer, TwiceSlowerReplicaGetsHalfTheShare) {
  LoadBalancer lb(2, 1, 12, {1.05, 5, 0});
  Sim sim{2, 1, {1.0, 2.0}};
  for (int step = 0; step < 4; ++step) EXPECT_FALSE(lb.observe(sim.step(lb.batch_shares()), false));
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{6, 6}));
  EXPECT_NEAR(lb.imbalance(), 12.0 / 9.0, 1e-12);
  EXPECT_TRUE(lb.observe(sim.step(lb.batch_shares()), false));  // the 5th step over the threshold
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(lb.first_sequence(1), 8);
  EXPECT_EQ(lb.replans(), 1);
  EXPECT_NEAR(lb.throughput()[0], 2 * lb.throughput()[1], 1e-9);
}

// One rank slowed 2x: the balancer moves batch share away from it, the imbalance falls below 1.1 within the
// stage and stays there, through a stage transition that makes every sequence dearer, with no oscillation.
TEST(LoadBalancer, SlowRankSimulationConvergesWithoutOscillation) {
  for (int64_t batch : {12, 10, 64}) {
    LoadBalancer lb(2, 1, batch, {1.05, 5, 0});
    Sim sim{2, 1, {1.0, 2.0}, 0.02};
    std::vector<int64_t> settled;
    int replans_after_settling = -1;
    for (int step = 0; step < 200; ++step) {
      const bool stage_changed = step == 100;
      if (step == 100) sim.cost = {3.0, 6.0};  // the next stage trains a larger subnetwork on every rank
      lb.observe(sim.step(lb.batch_shares()), stage_changed);
      EXPECT_EQ(sum(lb.batch_shares()), batch);
      if (step == 5) {
        settled = lb.batch_shares();
        replans_after_settling = lb.replans();
        EXPECT_LT(settled[1], settled[0]);
        EXPECT_EQ(replans_after_settling, 1) << "batch " << batch;
      }
      if (step > 5) {
        EXPECT_LT(lb.imbalance(), 1.1) << "batch " << batch << " step " << step;
        EXPECT_EQ(lb.batch_shares(), settled) << "batch " << batch << " step " << step;
      }
    }
    // 12 splits exactly 2:1; 10 -> 7/3 (7 vs 6 seconds); 64 -> 43/21 or, with the noise, 42/22.
    const std::vector<int64_t> expect = batch == 12 ? std::vector<int64_t>{8, 4}
                                        : batch == 10 ? std::vector<int64_t>{7, 3}
                                                      : std::vector<int64_t>{43, 21};
    EXPECT_NEAR(static_cast<double>(settled[0]), static_cast<double>(expect[0]), batch == 64 ? 1.0 : 0.0);
    EXPECT_GE(lb.replans(), 2);  // at least the stage transition
  }
}

TEST(LoadBalancer, NoReplanWhileBalanced) {
  LoadBalancer lb(2, 1, 12, {1.05, 3, 0});
  for (int step = 0; step < 50; ++step) {
    // 4% apart: max/mean = 1.0196 <= 1.05
    EXPECT_FALSE(lb.observe(computes({1.0, 1.04}), false));
  }
  EXPECT_EQ(lb.replans(), 0);
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{6, 6}));
}

TEST(LoadBalancer, ReplansExactlyAfterPatienceConsecutiveStepsOverThreshold) {
  LoadBalancer lb(2, 1, 12, {1.05, 3, 0});
  const auto hot = computes({1.0, 2.0}), cool = computes({1.0, 1.0});
  // Two over, one under: the counter restarts.
  EXPECT_FALSE(lb.observe(hot, false));
  EXPECT_FALSE(lb.observe(hot, false));
  EXPECT_FALSE(lb.observe(cool, false));
  EXPECT_FALSE(lb.observe(hot, false));
  EXPECT_FALSE(lb.observe(hot, false));
  EXPECT_TRUE(lb.observe(hot, false));
  EXPECT_EQ(lb.replans(), 1);
  // The window of the re-plan held cool, hot, hot... only the last 3 (all hot): throughput 6/1 vs 6/2.
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{8, 4}));
  // The counter restarted: again exactly `patience` steps.
  EXPECT_FALSE(lb.observe(hot, false));
  EXPECT_FALSE(lb.observe(hot, false));
  EXPECT_TRUE(lb.observe(hot, false));
  EXPECT_EQ(lb.replans(), 2);
}

TEST(LoadBalancer, StageTransitionForcesAReplan) {
  LoadBalancer lb(2, 1, 12, {1.05, 5, 0});
  // Nothing measured yet (all-zero timings): keep the plan, no re-plan.
  EXPECT_FALSE(lb.observe(computes({0, 0}), true));
  EXPECT_EQ(lb.replans(), 0);
  // Balanced, yet the transition re-plans (from one sample); shares stay.
  EXPECT_TRUE(lb.observe(computes({1.0, 1.0}), true));
  EXPECT_EQ(lb.replans(), 1);
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{6, 6}));
  // Two steps of a 2x slower replica, then a transition: re-plans from what was measured.
  EXPECT_FALSE(lb.observe(computes({6.0, 12.0}), false));
  EXPECT_TRUE(lb.observe(computes({6.0, 12.0}), true));
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(lb.replans(), 2);
}

TEST(LoadBalancer, ReplicaTimeIsTheSlowestTpRankAndPriorityIsFastestFirst) {
  // dp = 2, tp = 2: replica 1's second TP rank is 2x slower; the replica waits for it.
  LoadBalancer lb(2, 2, 12, {1.05, 2, 0});
  Sim sim{2, 2, {1.0, 1.0, 1.0, 2.0}};
  EXPECT_FALSE(lb.observe(sim.step(lb.batch_shares()), false));
  EXPECT_TRUE(lb.observe(sim.step(lb.batch_shares()), false));
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(lb.tp_priority(), (std::vector<int>{0, 1}));

  // TP rank 0 is the slow one on both replicas: rank 1 first. Replica times are equal: the shares stay.
  LoadBalancer lb2(2, 2, 12, {1.05, 2, 0});
  EXPECT_FALSE(lb2.observe(computes({2, 1, 2, 1}), false));
  EXPECT_TRUE(lb2.observe(computes({2, 1, 2, 1}), false));
  EXPECT_EQ(lb2.tp_priority(), (std::vector<int>{1, 0}));
  EXPECT_EQ(lb2.batch_shares(), (std::vector<int64_t>{6, 6}));

  // tp = 4, mean compute over replicas 3, 1, 2, 1: ties keep rank order.
  LoadBalancer lb3(2, 4, 8, {1.05, 1, 0});
  EXPECT_TRUE(lb3.observe(computes({4, 1, 2, 1, 2, 1, 2, 1}), false));
  EXPECT_EQ(lb3.tp_priority(), (std::vector<int>{1, 3, 2, 0}));
}

TEST(LoadBalancer, TpPriorityPerUnitOfWorkWhenReported) {
  // Homogeneous TP ranks, 3 heads over 2 ranks: rank 0 ran 2 heads and looks slower in raw compute. Per unit of
  // work the ranks are equal, so the order stays (no flip of the extra head at every re-plan).
  LoadBalancer lb(1, 2, 4, {1.05, 1, 0});
  std::vector<RankTiming> t{{2.0, 0, 0, 2}, {1.0, 0, 0, 1}};
  EXPECT_TRUE(lb.observe(t, false));
  EXPECT_EQ(lb.tp_priority(), (std::vector<int>{0, 1}));
  // A rank 1.5x slower per unit of work goes last even with the smaller quota.
  std::vector<RankTiming> u{{2.0, 0, 0, 2}, {1.5, 0, 0, 1}};
  EXPECT_TRUE(lb.observe(u, true));
  EXPECT_EQ(lb.tp_priority(), (std::vector<int>{0, 1}));
  std::vector<RankTiming> v{{3.0, 0, 0, 2}, {1.0, 0, 0, 1}};
  EXPECT_TRUE(lb.observe(v, true));
  EXPECT_EQ(lb.tp_priority(), (std::vector<int>{1, 0}));
  // Without work from every rank, raw compute decides.
  std::vector<RankTiming> w{{2.0, 0, 0, 2}, {1.0, 0, 0, 0}};
  EXPECT_TRUE(lb.observe(w, true));
  EXPECT_EQ(lb.tp_priority(), (std::vector<int>{1, 0}));
}

TEST(LoadBalancer, CapIsRespectedAndTheSumKept) {
  // dp = 3, batch 30, cap 12: replica 0 is 4x faster than the others. Proportional would be 20/5/5; the cap
  // holds it at 12 and the other 18 split evenly.
  LoadBalancer lb(3, 1, 30, {1.05, 2, 12});
  Sim sim{3, 1, {1.0, 4.0, 4.0}};
  for (int step = 0; step < 2; ++step) lb.observe(sim.step(lb.batch_shares()), false);
  EXPECT_EQ(lb.replans(), 1);
  EXPECT_EQ(lb.batch_shares(), (std::vector<int64_t>{12, 9, 9}));
  for (int step = 0; step < 40; ++step) {
    lb.observe(sim.step(lb.batch_shares()), false);
    for (int64_t s : lb.batch_shares()) EXPECT_LE(s, 12);
    EXPECT_EQ(sum(lb.batch_shares()), 30);
  }
  // Cap and floor at once: one very slow replica keeps 1 sequence, the fast one its cap.
  LoadBalancer lb2(4, 1, 20, {1.05, 1, 8});
  lb2.observe(computes({5.0, 5.0, 5.0, 5000.0}), false);
  const auto& s = lb2.batch_shares();
  EXPECT_EQ(sum(s), 20);
  EXPECT_EQ(s[3], 1);
  for (int64_t x : s) EXPECT_LE(x, 8);
  EXPECT_EQ(s, (std::vector<int64_t>{7, 6, 6, 1}));
  // Both bounds bind: 100x / 1x / 1x / 0.001x speeds, cap 8 -> 8, then 20 - 8 - 1 = 11 over the two middle ones.
  LoadBalancer lb4(4, 1, 20, {1.05, 1, 8});
  lb4.observe(computes({5.0 / 100, 5.0, 5.0, 5.0 / 0.001}), false);
  EXPECT_EQ(lb4.batch_shares(), (std::vector<int64_t>{8, 6, 5, 1}));
  // A cap that exactly fits the batch: every replica at the cap whatever the speeds.
  LoadBalancer lb3(2, 1, 8, {1.05, 1, 4});
  lb3.observe(computes({1.0, 10.0}), false);
  EXPECT_EQ(lb3.batch_shares(), (std::vector<int64_t>{4, 4}));
}

// Random speeds, batches and caps: the sum, the bounds, and a faster replica never gets fewer sequences; each
// share within one sequence of its real quota when nothing binds.
TEST(LoadBalancer, RandomPlansKeepTheInvariants) {
  uint64_t seed = 7;
  auto next = [&]() {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(seed >> 11) / static_cast<double>(1ULL << 53);
  };
  for (int trial = 0; trial < 500; ++trial) {
    const int dp = 1 + static_cast<int>(next() * 9);
    const int64_t batch = 1 + static_cast<int64_t>(next() * 100);
    const int64_t min_cap = (batch + dp - 1) / dp;
    const int64_t cap = next() < 0.5 ? 0 : min_cap + static_cast<int64_t>(next() * 10);
    LoadBalancer lb(dp, 1, batch, {1.0, 1, cap});
    std::vector<double> speed(dp);  // sequences per second
    for (double& x : speed) x = 0.05 + 10 * next() * next();
    std::vector<RankTiming> t(dp);
    for (int r = 0; r < dp; ++r) t[r].compute = static_cast<double>(lb.batch_shares()[r]) / speed[r];
    lb.observe(t, true);
    const auto& s = lb.batch_shares();
    ASSERT_EQ(sum(s), batch);
    double total_speed = 0;
    for (double x : speed) total_speed += x;
    bool unbound = cap == 0;
    for (int r = 0; r < dp; ++r) {
      EXPECT_GE(s[r], batch >= dp ? 1 : 0) << trial;
      if (cap > 0) {
        EXPECT_LE(s[r], cap) << trial;
      }
      for (int o = 0; o < dp; ++o) {
        if (batch >= dp && speed[r] > speed[o]) {  // (with fewer, idle replicas are not measured)
          EXPECT_GE(s[r], s[o]) << trial;
        }
      }
      if (static_cast<double>(batch) * speed[r] / total_speed < 1) unbound = false;
    }
    if (unbound) {
      for (int r = 0; r < dp; ++r) {
        EXPECT_LT(std::abs(static_cast<double>(s[r]) - static_cast<double>(batch) * speed[r] / total_speed), 1.0)
            << trial;
      }
    }
  }
}

TEST(LoadBalancer, BatchSmallerThanDp) {
  LoadBalancer lb(4, 1, 2, {1.05, 1, 0});
  // Element by element: GCC 12.2 targeting AVX-512 (-march=native on such a CPU) emits the 32-byte constant
  // {1, 1, 0, 0} of int64 as a broadcast of 1 (wrong code), so a vector literal of it would read {1, 1, 1, 1}.
  const std::vector<int64_t>& initial = lb.batch_shares();
  ASSERT_EQ(initial.size(), 4u);
  EXPECT_EQ(initial[0], 1);
  EXPECT_EQ(initial[1], 1);
  EXPECT_EQ(initial[2], 0);
  EXPECT_EQ(initial[3], 0);
  EXPECT_EQ(lb.first_sequence(2), 2);
  EXPECT_EQ(lb.first_sequence(4), 2);
  // Replica 1 is slow; idle replicas 2 and 3 are assumed as fast as the mean of the measured ones.
  lb.observe(computes({1.0, 3.0, 0.0, 0.0}), false);
  EXPECT_EQ(sum(lb.batch_shares()), 2);
  for (int64_t s : lb.batch_shares()) EXPECT_GE(s, 0);
  EXPECT_EQ(lb.batch_shares()[1], 0);
  // Batch of one over a single replica, and of one over many.
  LoadBalancer one(1, 1, 1, {});
  EXPECT_EQ(one.batch_shares(), (std::vector<int64_t>{1}));
  LoadBalancer many(3, 2, 1, {1.05, 1, 0});
  many.observe(computes({1, 1, 0, 0, 0, 0}), true);
  EXPECT_EQ(sum(many.batch_shares()), 1);
}

TEST(LoadBalancer, StateRoundTripGivesTheSameFutureDecisions) {
  const BalancerConfig cfg{1.05, 4, 0};
  LoadBalancer a(3, 2, 48, cfg);
  Sim sim{3, 2, {1.0, 1.1, 2.0, 1.0, 1.5, 1.5}, 0.05};
  for (int step = 0; step < 13; ++step) a.observe(sim.step(a.batch_shares()), step == 7);
  const std::vector<double> saved = a.state();
  LoadBalancer b(3, 2, 48, cfg);
  b.restore(saved);
  EXPECT_EQ(b.state(), saved);
  EXPECT_EQ(b.batch_shares(), a.batch_shares());
  EXPECT_EQ(b.tp_priority(), a.tp_priority());
  EXPECT_EQ(b.replans(), a.replans());
  for (int r = 0; r <= 3; ++r) EXPECT_EQ(b.first_sequence(r), a.first_sequence(r));
  Sim sim_b = sim;
  sim.cost = sim_b.cost = {1.0, 3.0, 1.0, 1.0, 1.0, 1.0};  // the load moves after the resume
  for (int step = 0; step < 40; ++step) {
    const bool ra = a.observe(sim.step(a.batch_shares()), step == 20);
    const bool rb = b.observe(sim_b.step(b.batch_shares()), step == 20);
    ASSERT_EQ(ra, rb) << step;
    ASSERT_EQ(a.batch_shares(), b.batch_shares()) << step;
    ASSERT_EQ(a.tp_priority(), b.tp_priority()) << step;
    ASSERT_EQ(a.imbalance(), b.imbalance()) << step;
  }
  EXPECT_EQ(a.state(), b.state());

  // Another shape, a bad or truncated state: refused.
  LoadBalancer other(2, 2, 48, cfg);
  EXPECT_THROW(other.restore(saved), std::invalid_argument);
  std::vector<double> cut(saved.begin(), saved.end() - 1);
  EXPECT_THROW(b.restore(cut), std::invalid_argument);
  EXPECT_THROW(b.restore({}), std::invalid_argument);
  // Resumed under a lower cap: re-planned within it at once, the sum kept.
  LoadBalancer capped(3, 2, 48, {1.05, 4, 17});
  capped.restore(saved);
  for (int64_t s : capped.batch_shares()) EXPECT_LE(s, 17);
  EXPECT_EQ(sum(capped.batch_shares()), 48);
}

TEST(LoadBalancer, DeterministicOnTheSameInputs) {
  const BalancerConfig cfg{1.05, 3, 20};
  LoadBalancer a(4, 2, 64, cfg), b(4, 2, 64, cfg);
  Sim sim{4, 2, {1.0, 1.2, 0.7, 0.7, 2.0, 1.9, 1.0, 1.3}, 0.1};
  for (int step = 0; step < 100; ++step) {
    const auto t = sim.step(a.batch_shares());
    ASSERT_EQ(a.observe(t, step % 37 == 0), b.observe(t, step % 37 == 0));
    ASSERT_EQ(a.batch_shares(), b.batch_shares());
    ASSERT_EQ(a.tp_priority(), b.tp_priority());
    ASSERT_EQ(a.imbalance(), b.imbalance());
    EXPECT_EQ(sum(a.batch_shares()), 64);
    for (int64_t s : a.batch_shares()) EXPECT_TRUE(s >= 1 && s <= 20);
  }
  EXPECT_GT(a.replans(), 0);
  EXPECT_EQ(a.state(), b.state());
}

}  // namespace
}  // namespace est
