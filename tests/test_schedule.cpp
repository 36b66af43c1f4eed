// EST schedules: the shipped files, one clear error (file + key) for every kind of bad input, stage lookup, and
// the checks that depend on the model and the run length.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "est/schedule.hpp"
#include "input_error.hpp"

namespace est {
namespace {

struct TempSchedule {
  std::string path;
  explicit TempSchedule(const std::string& text) {
    char name[] = "/tmp/est_schedule_XXXXXX.yaml";
    const int fd = mkstemps(name, 5);
    EXPECT_GE(fd, 0);
    close(fd);
    std::ofstream(name) << text;
    path = name;
  }
  ~TempSchedule() { std::remove(path.c_str()); }
};

ModelShape gpt2_124m() { return ModelShape{}; }

// The file may carry a line number after the path.
void expect_load_error(const std::string& text, const std::string& key) {
  TempSchedule s(text);
  try {
    load_schedule(s.path);
    ADD_FAILURE() << "accepted bad input for " << key << ":\n" << text;
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_EQ(e.file().rfind(s.path, 0), 0u) << e.what();
  }
}

void expect_check_error(const std::string& text, const ModelShape& shape, int64_t steps, const std::string& key) {
  TempSchedule s(text);
  const Schedule sched = load_schedule(s.path);
  try {
    check_schedule(sched, shape, steps);
    ADD_FAILURE() << "accepted bad schedule for " << key << ":\n" << text;
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_EQ(e.file(), s.path) << e.what();
  }
}

std::vector<std::string> warnings_for(const std::string& text, const ModelShape& shape, int64_t steps) {
  TempSchedule s(text);
  return check_schedule(load_schedule(s.path), shape, steps);
}

TEST(Schedule, ParsesTheShippedSchedules) {
  const Schedule full = load_schedule(EST_SOURCE_DIR "/schedules/full.yaml");
  ASSERT_EQ(full.stages.size(), 1u);
  EXPECT_TRUE(full.stages[0].is_full());
  EXPECT_TRUE(check_schedule(full, gpt2_124m(), 10000).empty());

  const Schedule est = load_schedule(EST_SOURCE_DIR "/schedules/gpt2-est.yaml");
  ASSERT_EQ(est.stages.size(), 3u);
  EXPECT_DOUBLE_EQ(est.stages[0].until, 0.2);
  EXPECT_DOUBLE_EQ(est.stages[0].p_heads, 0.5);
  EXPECT_DOUBLE_EQ(est.stages[0].p_mlp, 0.5);
  EXPECT_DOUBLE_EQ(est.stages[0].p_layers, 0.5);
  EXPECT_DOUBLE_EQ(est.stages[1].p_heads, 0.5);
  EXPECT_DOUBLE_EQ(est.stages[1].p_layers, 1.0);
  EXPECT_TRUE(est.stages[2].is_full());
  EXPECT_DOUBLE_EQ(est.stages[2].until, 1.0);
  EXPECT_TRUE(check_schedule(est, gpt2_124m(), 10000).empty());
}

TEST(Schedule, ReadsOptionalKeysAndKeepsDefaults) {
  TempSchedule s(
      "stages:\n"
      "  - until_step: 50\n    p_layers: 0.5\n    layer_sampling: bernoulli\n    keep_first_layer: true\n"
      "    keep_last_layer: yes\n    shared_draw: true\n"
      "  - p_heads: 1\n");
  const Schedule sched = load_schedule(s.path);
  EXPECT_EQ(sched.path, s.path);
  ASSERT_EQ(sched.stages.size(), 2u);
  const StageSpec& a = sched.stages[0];
  EXPECT_EQ(a.until_step, 50);
  EXPECT_EQ(a.layer_sampling, LayerSampling::bernoulli);
  EXPECT_TRUE(a.keep_first_layer && a.keep_last_layer && a.shared_draw);
  EXPECT_DOUBLE_EQ(a.p_heads, 1.0);
  EXPECT_FALSE(a.is_full());
  const StageSpec& b = sched.stages[1];
  EXPECT_EQ(b.until_step, -1);
  EXPECT_DOUBLE_EQ(b.until, 1.0);
  EXPECT_EQ(b.layer_sampling, LayerSampling::uniform);
  EXPECT_FALSE(b.keep_first_layer || b.keep_last_layer || b.shared_draw);
  EXPECT_TRUE(b.is_full());
}

TEST(Schedule, RejectsABadStructure) {
  expect_load_error("", "stages");
  expect_load_error("stages: 3\n", "stages");
  expect_load_error("stages: {until: 1}\n", "stages");
  expect_load_error("stages: []\n", "stages");
  expect_load_error("stage:\n  - until: 1\n", "stage");
  expect_load_error("- until: 1\n", "yaml");
  expect_load_error("stages: [\n", "yaml");
  expect_load_error("stages:\n  - 0.5\n", "stages[0]");
  expect_load_error("stages:\n  - until: 0.5\n  - [1, 2]\n", "stages[1]");
  expect_load_error("stages:\n  - p_head: 0.5\n", "stages[0].p_head");
  expect_load_error("stages:\n  - until: 0.5\n  - until: 1\n    rate: 1\n", "stages[1].rate");
}

TEST(Schedule, RejectsWrongTypes) {
  expect_load_error("stages:\n  - p_heads: half\n", "stages[0].p_heads");
  expect_load_error("stages:\n  - p_mlp: [0.5]\n", "stages[0].p_mlp");
  expect_load_error("stages:\n  - until_step: 2.5\n", "stages[0].until_step");
  expect_load_error("stages:\n  - until: soon\n", "stages[0].until");
  expect_load_error("stages:\n  - keep_first_layer: maybe\n", "stages[0].keep_first_layer");
  expect_load_error("stages:\n  - shared_draw: 2\n", "stages[0].shared_draw");
  expect_load_error("stages:\n  - layer_sampling: {a: 1}\n", "stages[0].layer_sampling");
}

TEST(Schedule, RejectsBadValues) {
  expect_load_error("stages:\n  - layer_sampling: random\n", "stages[0].layer_sampling");
  expect_load_error("stages:\n  - until: 0\n", "stages[0].until");
  expect_load_error("stages:\n  - until: 1.5\n", "stages[0].until");
  expect_load_error("stages:\n  - until_step: 0\n", "stages[0].until_step");
  expect_load_error("stages:\n  - p_heads: 0\n", "stages[0].p_heads");
  expect_load_error("stages:\n  - p_mlp: -0.5\n", "stages[0].p_mlp");
  expect_load_error("stages:\n  - p_layers: 1.2\n", "stages[0].p_layers");
  expect_load_error("stages:\n  - p_heads: .nan\n", "stages[0].p_heads");
}

TEST(Schedule, RejectsAmbiguousOrUnorderedEnds) {
  expect_load_error("stages:\n  - until: 0.5\n    until_step: 10\n", "stages[0].until_step");
  expect_load_error("stages:\n  - p_heads: 0.5\n  - until: 1\n", "stages[0].until");
  expect_load_error("stages:\n  - until: 0.5\n  - until: 0.5\n", "stages[1].until");
  expect_load_error("stages:\n  - until: 0.6\n  - until: 0.5\n  - until: 1\n", "stages[1].until");
  expect_load_error("stages:\n  - until_step: 10\n  - until_step: 5\n  - {}\n", "stages[1].until_step");
  expect_load_error("stages:\n  - until: 0.5\n  - until_step: 9\n  - until: 0.4\n", "stages[2].until");
  // A last stage without until ends at 1.0, which the previous stage already reaches.
  expect_load_error("stages:\n  - until: 1.0\n  - p_heads: 1\n", "stages[1].until");
}

TEST(Schedule, StageEndsAndLookupOnFractions) {
  Schedule s;
  s.stages = {StageSpec{}, StageSpec{}, StageSpec{}};
  s.stages[0].until = 0.2;
  s.stages[1].until = 0.66;
  EXPECT_EQ(s.stage_end(0, 100), 20);
  EXPECT_EQ(s.stage_end(1, 100), 66);
  EXPECT_EQ(s.stage_end(2, 100), 100);
  EXPECT_EQ(s.stage_at(0, 100), 0u);
  EXPECT_EQ(s.stage_at(19, 100), 0u);
  EXPECT_EQ(s.stage_at(20, 100), 1u);
  EXPECT_EQ(s.stage_at(65, 100), 1u);
  EXPECT_EQ(s.stage_at(66, 100), 2u);
  EXPECT_EQ(s.stage_at(99, 100), 2u);
  // round(0.2 * 7) = 1, round(0.66 * 7) = round(4.62) = 5.
  EXPECT_EQ(s.stage_end(0, 7), 1);
  EXPECT_EQ(s.stage_end(1, 7), 5);
  EXPECT_EQ(s.stage_at(1, 7), 1u);
  EXPECT_EQ(s.stage_at(5, 7), 2u);
}

TEST(Schedule, StageEndsAndLookupWithAbsoluteSteps) {
  Schedule s;
  s.stages = {StageSpec{}, StageSpec{}, StageSpec{}};
  s.stages[0].until_step = 10;
  s.stages[1].until = 0.5;
  EXPECT_EQ(s.stage_end(0, 100), 10);
  EXPECT_EQ(s.stage_end(0, 1000), 10);
  EXPECT_EQ(s.stage_end(1, 1000), 500);
  EXPECT_EQ(s.stage_at(9, 1000), 0u);
  EXPECT_EQ(s.stage_at(10, 1000), 1u);
  EXPECT_EQ(s.stage_at(499, 1000), 1u);
  EXPECT_EQ(s.stage_at(500, 1000), 2u);
  EXPECT_EQ(s.stage_at(999, 1000), 2u);
}

TEST(Schedule, FullScheduleAndCounts) {
  const Schedule full = full_schedule();
  EXPECT_TRUE(full.path.empty());
  ASSERT_EQ(full.stages.size(), 1u);
  EXPECT_TRUE(full.stages[0].is_full());
  EXPECT_EQ(full.stage_end(0, 123), 123);
  EXPECT_EQ(full.stage_at(122, 123), 0u);
  EXPECT_TRUE(check_schedule(full, gpt2_124m(), 123).empty());

  EXPECT_EQ(count_for(0.5, 12), 6);
  EXPECT_EQ(count_for(0.3, 12), 4);      // 3.6
  EXPECT_EQ(count_for(0.7, 3072), 2150);  // 2150.4
  EXPECT_EQ(count_for(1.0 / 24, 12), 1);  // 0.5 rounds up
  EXPECT_EQ(count_for(0.04, 12), 0);
  EXPECT_EQ(count_for(1.0, 7), 7);
}

TEST(Schedule, CheckRejectsSetsThatRoundToNothing) {
  const ModelShape s = gpt2_124m();
  expect_check_error("stages:\n  - p_heads: 0.04\n", s, 100, "stages[0].p_heads");
  expect_check_error("stages:\n  - until: 0.5\n  - p_mlp: 0.0001\n", s, 100, "stages[1].p_mlp");
  expect_check_error("stages:\n  - p_layers: 0.04\n", s, 100, "stages[0].p_layers");
  // keep_first_layer and keep_last_layer need two layers, but round(0.08 * 12) = 1.
  expect_check_error("stages:\n  - p_layers: 0.08\n    keep_first_layer: true\n    keep_last_layer: true\n", s, 100,
                     "stages[0].p_layers");
  // Bernoulli sampling has no fixed count, and one kept layer fits in one.
  EXPECT_NO_THROW(warnings_for("stages:\n  - until: 0.5\n    p_layers: 0.04\n    layer_sampling: bernoulli\n"
                               "  - {}\n", s, 100));
  EXPECT_NO_THROW(warnings_for("stages:\n  - until: 0.5\n    p_layers: 0.08\n    keep_first_layer: true\n  - {}\n",
                               s, 100));
  ModelShape one = s;
  one.n_layer = 1;
  EXPECT_NO_THROW(warnings_for("stages:\n  - until: 0.5\n    p_layers: 1\n    keep_first_layer: true\n"
                               "    keep_last_layer: true\n    p_heads: 0.5\n  - {}\n", one, 100));
}

TEST(Schedule, CheckRejectsEndsThatDoNotFitTheRun) {
  const ModelShape s = gpt2_124m();
  expect_check_error("stages:\n  - until_step: 200\n    p_heads: 0.5\n  - {}\n", s, 100, "stages[0].until_step");
  expect_check_error("stages:\n  - until: 0.5\n  - until_step: 30\n  - {}\n", s, 100, "stages[1].until_step");
  expect_check_error("stages:\n  - until: 0.5\n  - until_step: 80\n", s, 100, "stages[1].until_step");
  expect_check_error("stages:\n  - until: 0.5\n  - until: 0.99\n", s, 1000, "stages[1].until");
  EXPECT_NO_THROW(warnings_for("stages:\n  - until: 0.5\n  - until: 0.99\n", s, 10));  // round(9.9) = 10
  EXPECT_NO_THROW(warnings_for("stages:\n  - until: 0.5\n  - until_step: 100\n", s, 100));
}

TEST(Schedule, CheckWarnsAboutEmptyStagesAndAPartialLastStage) {
  const ModelShape s = gpt2_124m();
  // For 100 steps both early stages end at step 0.
  const auto empty = warnings_for("stages:\n  - until: 0.001\n    p_heads: 0.5\n  - until: 0.002\n  - {}\n", s, 100);
  ASSERT_EQ(empty.size(), 2u);
  EXPECT_NE(empty[0].find("stages[0]"), std::string::npos) << empty[0];
  EXPECT_NE(empty[1].find("stages[1]"), std::string::npos) << empty[1];
  EXPECT_NE(empty[1].find("empty"), std::string::npos) << empty[1];
  EXPECT_TRUE(warnings_for("stages:\n  - until: 0.001\n    p_heads: 0.5\n  - until: 0.002\n  - {}\n", s, 10000)
                  .empty());

  const auto partial = warnings_for("stages:\n  - until: 0.5\n  - p_heads: 0.5\n", s, 100);
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_NE(partial[0].find("stages[1]"), std::string::npos) << partial[0];
  EXPECT_NE(partial[0].find("does not train the full model"), std::string::npos) << partial[0];
  EXPECT_EQ(partial[0].rfind("/tmp/est_schedule_", 0), 0u) << partial[0];
}

}  // namespace
}  // namespace est
