#include "jobs/study_plan.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <set>

#include "config/config.hpp"
#include "config/yaml_file.hpp"
#include "est/schedule.hpp"
#include "input_error.hpp"
#include "train/flops_report.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

struct SpecFile {
  std::string path;
  fs::path dir;

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& message) const {
    throw InputError(node ? located(path, node) : path, key, message);
  }

  void only_keys(const YAML::Node& map, const std::set<std::string>& allowed, const std::string& where) const {
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (!allowed.count(key)) fail(kv.first, where + key, "unknown key");
    }
  }

  std::string text(const YAML::Node& map, const std::string& key, const std::string& where) const {
    const YAML::Node v = map[key];
    if (!v) fail(map, where + key, "missing");
    if (!v.IsScalar() || v.Scalar().empty()) fail(v, where + key, "expected a non-empty string");
    return v.Scalar();
  }

  // Relative to the spec's directory.
  std::string path_of(const YAML::Node& map, const std::string& key, const std::string& where) const {
    const fs::path p = text(map, key, where);
    return (p.is_absolute() ? p : dir / p).lexically_normal().string();
  }

  std::vector<std::string> overrides(const YAML::Node& map, const std::string& key, const std::string& where) const {
    const YAML::Node v = map[key];
    if (!v) return {};
    if (!v.IsSequence()) fail(v, where + key, "expected a list of key=value");
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string k = where + key + "[" + std::to_string(i) + "]";
      if (!v[i].IsScalar() || v[i].Scalar().find('=') == std::string::npos) fail(v[i], k, "expected key=value");
      out.push_back(v[i].Scalar());
    }
    return out;
  }

  std::vector<uint64_t> seeds(const YAML::Node& root) const {
    const YAML::Node v = root["seeds"];
    if (!v) fail(root, "seeds", "missing");
    if (!v.IsSequence() || v.size() == 0) fail(v, "seeds", "expected a non-empty list of seeds");
    std::vector<uint64_t> out;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string k = "seeds[" + std::to_string(i) + "]";
      if (!v[i].IsScalar() || !std::regex_match(v[i].Scalar(), std::regex("[0-9]{1,19}"))) {
        fail(v[i], k, "expected a non-negative integer");
      }
      out.push_back(std::stoull(v[i].Scalar()));
      if (std::count(out.begin(), out.end(), out.back()) > 1) fail(v[i], k, "repeats seed " + v[i].Scalar());
    }
    return out;
  }

  StudyVariant variant(const YAML::Node& v, size_t i, const std::set<std::string>& taken) const {
    const std::string where = "variants[" + std::to_string(i) + "].";
    if (!v.IsMap()) fail(v, "variants[" + std::to_string(i) + "]", "expected a mapping");
    only_keys(v, {"name", "schedule", "set", "compute_matched"}, where);
    StudyVariant out;
    out.name = text(v, "name", where);
    if (!std::regex_match(out.name, std::regex("[A-Za-z0-9_.+-]+")) || out.name[0] == '.') {
      fail(v["name"], where + "name", "'" + out.name + "' must be letters, digits and _.+- (it names directories)");
    }
    if (taken.count(out.name)) fail(v["name"], where + "name", "repeats variant '" + out.name + "'");
    out.schedule = path_of(v, "schedule", where);
    out.set = overrides(v, "set", where);
    if (const YAML::Node m = v["compute_matched"]) {
      if (!m.IsScalar() || (m.Scalar() != "true" && m.Scalar() != "false")) {
        fail(m, where + "compute_matched", "expected true or false");
      }
      out.compute_matched = m.Scalar() == "true";
    }
    return out;
  }
};

std::vector<std::string> joined(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The run length at which VARIANT's training FLOPs come closest to BUDGET: its stages are fractions of the run,
// so the FLOPs grow with the steps almost in proportion.
int64_t steps_for_flops(const Config& cfg, const Schedule& schedule, double budget) {
  Config c = cfg;
  const auto flops_at = [&](int64_t steps) {
    c.train.steps = int(steps);
    return schedule_flops_for(c, schedule).flops;
  };
  const int64_t guess = std::llround(cfg.train.steps * budget / flops_at(cfg.train.steps));
  int64_t best = std::max<int64_t>(1, guess);
  double best_gap = std::abs(flops_at(best) - budget);
  for (int64_t n = std::max<int64_t>(1, guess - 3); n <= guess + 3; ++n) {
    const double gap = std::abs(flops_at(n) - budget);
    if (gap < best_gap) best = n, best_gap = gap;
  }
  return best;
}

// Loads the variant's config at its steps, checks its schedule there and records its predicted FLOPs.
Config checked_config(const std::string& config, const std::vector<std::string>& overrides, StudyVariant& v) {
  const Config cfg = load_config(config, overrides);
  const Schedule schedule = load_schedule(v.schedule);
  check_schedule(schedule, cfg.shape(), cfg.train.steps, cfg.parallel.tp, cfg.head_unit());
  const ScheduleFlops f = schedule_flops_for(cfg, schedule);
  v.steps = cfg.train.steps;
  v.flops = f.flops;
  v.flops_full = f.flops_full;
  return cfg;
}

}  // namespace

StudyPlan plan_study(const std::string& spec, const std::vector<std::string>& overrides, const std::string& out_dir) {
  const SpecFile file{fs::absolute(spec).lexically_normal().string(), fs::absolute(spec).parent_path()};
  const YAML::Node root = load_yaml_file(spec, "study");
  if (!root.IsMap()) file.fail(root, "", "expected a mapping (config, seeds, variants)");
  file.only_keys(root, {"config", "seeds", "baseline", "set", "variants"}, "");

  StudyPlan plan;
  plan.spec = file.path;
  const std::string config = file.path_of(root, "config", "");
  const std::vector<std::string> common = joined(file.overrides(root, "set", ""), overrides);
  plan.config_yaml = load_config(config, common).yaml_text;
  plan.seeds = file.seeds(root);
  const YAML::Node variants = root["variants"];
  if (!variants || !variants.IsSequence() || variants.size() == 0) {
    file.fail(variants ? variants : root, "variants", "expected a non-empty list of variants");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < variants.size(); ++i) {
    plan.variants.push_back(file.variant(variants[i], i, names));
    names.insert(plan.variants.back().name);
  }
  plan.baseline = root["baseline"] ? file.text(root, "baseline", "") : plan.variants.front().name;
  const auto base = std::find_if(plan.variants.begin(), plan.variants.end(),
                                 [&](const StudyVariant& v) { return v.name == plan.baseline; });
  if (base == plan.variants.end()) file.fail(root["baseline"], "baseline", "'" + plan.baseline + "' is not a variant");
  if (base->compute_matched) file.fail(root["baseline"], "baseline", "the baseline cannot be compute-matched");
  checked_config(config, joined(common, joined({"est.schedule=" + base->schedule}, base->set)), *base);

  const fs::path out = fs::absolute(out_dir).lexically_normal();
  for (StudyVariant& v : plan.variants) {
    std::vector<std::string> sets = joined(common, joined({"est.schedule=" + v.schedule}, v.set));
    Config cfg = checked_config(config, sets, v);
    if (v.compute_matched) {
      const int64_t steps = steps_for_flops(cfg, load_schedule(v.schedule), base->flops);
      sets.push_back("train.steps=" + std::to_string(steps));
      cfg = checked_config(config, sets, v);
    }
    for (const uint64_t seed : plan.seeds) {
      StudyPoint p{v.name + "-s" + std::to_string(seed), v.name, seed, v.steps, {}};
      p.overrides = joined(joined({"est.schedule=" + v.schedule}, v.set),
                           {"train.seed=" + std::to_string(seed), "train.steps=" + std::to_string(v.steps),
                            "output.dir=" + (out / p.name).string()});
      load_config(config, joined(common, p.overrides));  // the seed and directory are good too
      plan.points.push_back(std::move(p));
    }
  }
  return plan;
}

}  // namespace est
