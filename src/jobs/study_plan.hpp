#pragma once
// An EST quality study (`est study`): a base config, variants (a schedule, config overrides, optionally extra
// steps so that the run spends the baseline's FLOPs) and seeds; every variant at every seed is one training run
// (a point). The plan is worked out and every point's config checked before anything runs.
//
// The spec, a YAML file (paths relative to it):
//   config: ../configs/study.yaml
//   seeds: [1, 2, 3]
//   baseline: full                  # default: the first variant
//   set: [train.steps=400]          # overrides for every point (optional)
//   variants:
//     - name: full
//       schedule: ../schedules/full.yaml
//     - name: est-wsd
//       schedule: ../schedules/gpt2-est.yaml
//       set: [train.lr_schedule=wsd]
//       compute_matched: true       # more steps, to spend the baseline's training FLOPs
#include <cstdint>
#include <string>
#include <vector>

namespace est {

struct StudyVariant {
  std::string name, schedule;      // schedule: an absolute path
  std::vector<std::string> set;    // key=value
  bool compute_matched = false;
  int64_t steps = 0;               // train.steps of its runs
  double flops = 0, flops_full = 0;  // predicted training FLOPs of one run (est flops)
};

struct StudyPoint {
  std::string name, variant;
  uint64_t seed = 0;
  int64_t steps = 0;
  std::vector<std::string> overrides;  // the point's --set key=value for config.yaml, output.dir last
};

struct StudyPlan {
  std::string spec;         // absolute path
  std::string config_yaml;  // the base config with the study's overrides: the points' config.yaml
  std::string baseline;
  std::vector<uint64_t> seeds;
  std::vector<StudyVariant> variants;
  std::vector<StudyPoint> points;  // variant-major, in the spec's order
};

// Reads SPEC, applies OVERRIDES (the command line's --set) after the spec's own, and checks every point's
// config and schedule. Each point's output.dir is OUT_DIR/<variant>-s<seed>. InputError naming the spec (or the
// config, schedule or override) and the key.
StudyPlan plan_study(const std::string& spec, const std::vector<std::string>& overrides, const std::string& out_dir);

}  // namespace est
