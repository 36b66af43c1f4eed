// Scaling-study points: grids and batches for strong and weak scaling, and the errors that stop a study before
// any job is written.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "input_error.hpp"
#include "jobs/scaling_plan.hpp"

namespace est {
namespace {

Config config(int batch, int heads = 4, int tp = 1) {
  Config c;
  c.path = "study.yaml";
  c.train.batch_size = batch;
  c.model.n_head = heads;
  c.parallel.tp = tp;
  return c;
}

std::string error_key(const Config& c, const ScalingRequest& r) {
  try {
    plan_scaling(c, r);
  } catch (const InputError& e) {
    return e.key();
  }
  return "";
}

TEST(ScalingPlan, StrongScalingKeepsTheGlobalBatchAndSplitsItOverMoreRanks) {
  const auto points = plan_scaling(config(32), {{1, 2, 4}, ScalingMode::strong, 2, 4});
  ASSERT_EQ(points.size(), 3u);
  const int expected_dp[] = {2, 4, 8};
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ(points[i].ranks, points[i].nodes * 4);
    EXPECT_EQ(points[i].tp, 2);
    EXPECT_EQ(points[i].dp, expected_dp[i]);
    EXPECT_EQ(points[i].global_batch, 32);
    EXPECT_DOUBLE_EQ(points[i].per_rank_batch, 32.0 / expected_dp[i]);
  }
}

TEST(ScalingPlan, WeakScalingKeepsTheBatchOfOneDataParallelRank) {
  // 16 sequences over 2 DP ranks at one node: 8 per rank at every size.
  const auto points = plan_scaling(config(16), {{1, 3, 8}, ScalingMode::weak, 1, 2});
  ASSERT_EQ(points.size(), 3u);
  for (const auto& p : points) {
    EXPECT_EQ(p.dp, 2 * p.nodes);
    EXPECT_DOUBLE_EQ(p.per_rank_batch, 8.0);
    EXPECT_EQ(p.global_batch, 8 * p.dp);
  }
}

TEST(ScalingPlan, TheConfigsTensorParallelSizeIsTheDefault) {
  const auto points = plan_scaling(config(8, 4, 2), {{2}, ScalingMode::strong, 0, 2});
  EXPECT_EQ(points[0].tp, 2);
  EXPECT_EQ(points[0].dp, 2);
}

TEST(ScalingPlan, RejectsPointsThatCannotRun) {
  EXPECT_EQ(error_key(config(8, 4), {{1}, ScalingMode::strong, 3, 3}), "parallel.tp");  // 3 does not divide 4 heads
  EXPECT_EQ(error_key(config(8, 4), {{1, 3}, ScalingMode::strong, 4, 2}), "parallel.tp");  // 4 ∤ 2 or 6 ranks
  EXPECT_EQ(error_key(config(4), {{1, 8}, ScalingMode::strong, 1, 1}), "train.batch_size");  // 4 sequences, 8 ranks
  EXPECT_EQ(error_key(config(9), {{1}, ScalingMode::weak, 1, 2}), "train.batch_size");  // 9 over 2 ranks
  EXPECT_EQ(error_key(config(8), {{1}, ScalingMode::strong, 1, 0}), "--ranks-per-node");
}

TEST(ScalingPlan, ParsesNodeListsAndModes) {
  EXPECT_EQ(parse_node_list("1,2,4,8", "--nodes"), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(parse_scaling_mode("weak", "--mode"), ScalingMode::weak);
  for (const char* bad : {"", "1,,2", "0,1", "2,1", "1,x", "1.5", "-1"})
    EXPECT_THROW(parse_node_list(bad, "--nodes"), InputError) << bad;
  EXPECT_THROW(parse_scaling_mode("medium", "--mode"), InputError);
}

}  // namespace
}  // namespace est
