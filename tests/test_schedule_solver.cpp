// `est schedule solve`: solved schedules save their target on the shipped shapes (as `est flops` counts it, read
// back from the written file), no neighbouring boundary does better, and targets the rates cannot reach are one
// InputError naming the flag.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "est/schedule_solver.hpp"
#include "input_error.hpp"
#include "train/flops_report.hpp"

namespace est {
namespace {

std::string config_file(const std::string& name) { return EST_SOURCE_DIR "/configs/" + name; }

ScheduleSolveRequest request(const std::string& config, double saving, std::vector<std::string> overrides = {}) {
  ScheduleSolveRequest r;
  r.config_path = config_file(config);
  r.overrides = std::move(overrides);
  r.saving = saving;
  return r;
}

// A path in a fresh directory, removed with what was written there.
struct TempPath {
  std::string dir, path;
  TempPath() {
    char name[] = "/tmp/est_solver_XXXXXX";
    EXPECT_NE(mkdtemp(name), nullptr);
    dir = name;
    path = dir + "/solved.yaml";
  }
  ~TempPath() {
    std::remove(path.c_str());
    rmdir(dir.c_str());
  }
};

struct Case {
  const char* config;
  std::vector<std::string> overrides;
};

// GPT-2 124M as configured (10000 steps) and over 300 steps; the quickstart's shape over its 1000 steps and 250;
// Llama with grouped-query attention, drawing whole KV groups and single query heads.
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"gpt2-124m.yaml", {}},
      {"gpt2-124m.yaml", {"train.steps=300"}},
      {"quickstart.yaml", {}},
      {"quickstart.yaml", {"train.steps=250"}},
      {"quickstart-llama.yaml", {}},
      {"tinyllama-1.1b.yaml", {"est.head_unit=query", "train.steps=2000"}},
  };
  return c;
}

TEST(ScheduleSolver, SolvedSchedulesSaveTheTargetAsEstFlopsCountsIt) {
  for (const Case& c : cases()) {
    for (const double target : {0.15, 0.25, 0.35}) {
      SCOPED_TRACE(std::string(c.config) + " at " + std::to_string(target));
      const SolvedSchedule s = solve_schedule(request(c.config, target, c.overrides));
      EXPECT_NEAR(s.flops.saving(), target, kSavingTolerance);
      EXPECT_EQ(s.f1(), 0.2);
      ASSERT_EQ(s.schedule.stages.size(), 3u);
      EXPECT_EQ(s.schedule.stages[1].p_layers, 1);
      EXPECT_TRUE(s.schedule.stages[2].is_full());

      TempPath out;
      EXPECT_EQ(write_solved_schedule(s, out.path), s.flops.saving());
      const Schedule back = load_schedule(out.path);
      EXPECT_TRUE(check_schedule(back, s.config.shape(), s.config.train.steps, 1, s.config.head_unit()).empty());
      EXPECT_EQ(schedule_flops_for(s.config, back).saving(), s.flops.saving());
      EXPECT_EQ(back.stages[1].until, s.f2());
    }
  }
}

// As close as the boundary rounding allows: moving stage 2's end by one grid step misses by at least as much.
TEST(ScheduleSolver, NoNeighbouringBoundaryIsCloser) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.config);
    const SolvedSchedule s = solve_schedule(request(c.config, 0.3, c.overrides));
    const double off = std::abs(s.flops.saving() - 0.3);
    for (const double delta : {-0.001, 0.001}) {
      Schedule moved = s.schedule;
      moved.stages[1].until = std::round((s.f2() + delta) * 1000) / 1000;
      EXPECT_GE(std::abs(schedule_flops_for(s.config, moved).saving() - 0.3), off);
    }
  }
}

// Under 1000 steps several boundaries end stage 2 at the same step; the file gives that step's own fraction.
TEST(ScheduleSolver, FewStepsGiveTheStepsOwnFraction) {
  const SolvedSchedule s = solve_schedule(request("quickstart.yaml", 0.3, {"train.steps=250"}));
  const int64_t end = s.flops.stages[1].end_step;
  EXPECT_EQ(s.f2(), std::round(double(end) / 250 * 1000) / 1000);
}

TEST(ScheduleSolver, HeaderCarriesTheArithmetic) {
  ScheduleSolveRequest r = request("quickstart.yaml", 0.3);
  r.out = "schedules/quickstart-30.yaml";
  const SolvedSchedule s = solve_schedule(r);
  const std::string yaml = format_solved_schedule(s);
  char f2[32], saving[32];
  std::snprintf(f2, sizeof f2, "f2 = %.3f solved", s.f2());
  std::snprintf(saving, sizeof saving, "# saving: %.5f", s.flops.saving());
  for (const std::string& part :
       {std::string("for ") + r.config_path, std::string("p_heads 0.5, p_mlp 0.5, p_layers 0.5"),
        std::string("2 of 4 layers, 2 of 4 heads, 512 of 1024 MLP neurons"), std::string("f1 = 0.200 (given)"),
        std::string(f2), std::string(saving), std::string("r1 = "), std::string("r2 = "),
        "# command: est schedule solve --config " + r.config_path +
            " --saving 0.3 --p-heads 0.5 --p-mlp 0.5 --p-layers 0.5 --stage1 0.2 --out schedules/quickstart-30.yaml"})
    EXPECT_NE(yaml.find(part), std::string::npos) << part << "\n" << yaml;
  EXPECT_NE(yaml.find("stages:\n  - until: 0.200\n    p_heads: 0.5\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  - until: 1.0\n    p_heads: 1\n    p_mlp: 1\n    p_layers: 1\n"), std::string::npos) << yaml;
}

TEST(ScheduleSolver, GroupedQueryHeadsAreDescribedInTheirUnits) {
  const std::string groups = format_solved_schedule(solve_schedule(request("quickstart-llama.yaml", 0.3)));
  EXPECT_NE(groups.find("1 of 2 KV groups (4 of 8 query heads)"), std::string::npos) << groups;
  const std::string queries =
      format_solved_schedule(solve_schedule(request("quickstart-llama.yaml", 0.3, {"est.head_unit=query"})));
  EXPECT_NE(queries.find("4 of 8 query heads (reading "), std::string::npos) << queries;
}

// The error's key, and that its message contains `says`.
void expect_error(const ScheduleSolveRequest& r, const std::string& key, const std::string& says) {
  try {
    solve_schedule(r);
    ADD_FAILURE() << "solved an impossible request; expected an error on " << key;
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(ScheduleSolver, TargetsTheRatesCannotReachNameTheFlag) {
  // est-method.md §6 with GPT-2 124M's stage ratios (test_flops.cpp) r1 = 124452864 / 266010624 and
  // r2 = 171638784 / 266010624: 0.2 (1 - r1) = 0.10643 for stage 1 alone, and 0.10643 + 0.799 (1 - r2) = 0.38989
  // with stage 2 until 0.999 (9990 of 10000 steps).
  expect_error(request("gpt2-124m.yaml", 0.9), "--saving", "at most 0.38989");
  expect_error(request("gpt2-124m.yaml", 0.9), "--saving", "lower --p-heads, --p-mlp or --p-layers");
  expect_error(request("gpt2-124m.yaml", 0.05), "--saving", "at least 0.10643");
  expect_error(request("gpt2-124m.yaml", 0.05), "--saving", "smaller --stage1");
  ScheduleSolveRequest gentle = request("quickstart.yaml", 0.3);
  gentle.p_heads = gentle.p_mlp = gentle.p_layers = 0.75;
  expect_error(gentle, "--saving", "at most");
}

TEST(ScheduleSolver, BadFlagsNameTheFlag) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const double saving : {0.0, 1.0, -0.2, nan})
    expect_error(request("quickstart.yaml", saving), "--saving", "(0, 1)");
  for (const double p : {0.0, 1.5, nan}) {
    ScheduleSolveRequest r = request("quickstart.yaml", 0.3);
    r.p_heads = p;
    expect_error(r, "--p-heads", "(0, 1]");
    r = request("quickstart.yaml", 0.3);
    r.p_mlp = p;
    expect_error(r, "--p-mlp", "(0, 1]");
    r = request("quickstart.yaml", 0.3);
    r.p_layers = p;
    expect_error(r, "--p-layers", "(0, 1]");
  }
  for (const double f1 : {0.0, 1.0, 0.9995}) {
    ScheduleSolveRequest r = request("quickstart.yaml", 0.3);
    r.stage1 = f1;
    expect_error(r, "--stage1", "");
  }
}

TEST(ScheduleSolver, RunsTooShortForTheStagesNameWhatToChange) {
  ScheduleSolveRequest r = request("quickstart.yaml", 0.3, {"train.steps=2"});
  expect_error(r, "--stage1", "stage 1 empty");
  r = request("quickstart.yaml", 0.3, {"train.steps=10"});
  r.stage1 = 0.9;
  expect_error(r, "--stage1", "no room for a stage 2 step and a full-model step");
  // 8 steps: the savings of whole stage-2 steps lie about 0.04 apart.
  expect_error(request("quickstart.yaml", 0.3, {"train.steps=8"}), "--saving", "raise train.steps");
}

TEST(ScheduleSolver, SetsThatRoundToNothingAndBadConfigsAreInputErrors) {
  ScheduleSolveRequest r = request("quickstart.yaml", 0.3);
  r.p_heads = 0.1;  // round(0.1 * 4) = 0 heads
  expect_error(r, "stages[0].p_heads", "= 0 of 4 heads");
  expect_error(request("quickstart.yaml", 0.3, {"model.n_layr=3"}), "model.n_layr", "");
  expect_error(request("no-such-config.yaml", 0.3), "file", "no-such-config.yaml");
}

}  // namespace
}  // namespace est
