#include "est/schedule.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "config/yaml_file.hpp"
#include "input_error.hpp"

namespace est {

namespace {

std::string decimal(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

// One value of the file with its key, so that every error points at it.
struct Value {
  const YAML::Node& node;
  std::string file;
  std::string key;

  [[noreturn]] void fail(const std::string& message) const { throw InputError(file, key, message); }

  template <class T>
  T as(const char* what) const {
    if (!node.IsScalar()) fail(std::string("expected ") + what);
    try {
      return node.as<T>();
    } catch (const YAML::BadConversion&) {
      fail(std::string("expected ") + what + ", got '" + node.Scalar() + "'");
    }
  }

  double rate() const {
    const double p = as<double>("a number");
    if (!(p > 0 && p <= 1)) fail("must be in (0, 1]");
    return p;
  }

  double fraction() const {
    const double f = as<double>("a number");
    if (!(f > 0 && f <= 1)) fail("must be in (0, 1] (a fraction of the run; until_step takes an absolute step)");
    return f;
  }

  int64_t step() const {
    const int64_t s = as<int64_t>("an integer");
    if (s < 1) fail("must be >= 1");
    return s;
  }

  LayerSampling sampling() const {
    const std::string name = as<std::string>("a string");
    if (name == "uniform") return LayerSampling::uniform;
    if (name == "bernoulli") return LayerSampling::bernoulli;
    fail("expected uniform or bernoulli, got '" + name + "'");
  }
};

using Setter = void (*)(StageSpec&, const Value&);

const std::map<std::string, Setter>& stage_fields() {
  static const std::map<std::string, Setter> fields = {
      {"until", [](StageSpec& s, const Value& v) { s.until = v.fraction(); }},
      {"until_step", [](StageSpec& s, const Value& v) { s.until_step = v.step(); }},
      {"p_heads", [](StageSpec& s, const Value& v) { s.p_heads = v.rate(); }},
      {"p_mlp", [](StageSpec& s, const Value& v) { s.p_mlp = v.rate(); }},
      {"p_layers", [](StageSpec& s, const Value& v) { s.p_layers = v.rate(); }},
      {"layer_sampling", [](StageSpec& s, const Value& v) { s.layer_sampling = v.sampling(); }},
      {"keep_first_layer", [](StageSpec& s, const Value& v) { s.keep_first_layer = v.as<bool>("a boolean"); }},
      {"keep_last_layer", [](StageSpec& s, const Value& v) { s.keep_last_layer = v.as<bool>("a boolean"); }},
      {"shared_draw", [](StageSpec& s, const Value& v) { s.shared_draw = v.as<bool>("a boolean"); }},
  };
  return fields;
}

std::string stage_key(size_t i) { return "stages[" + std::to_string(i) + "]"; }

std::string end_key(const StageSpec& s, size_t i) {
  return stage_key(i) + (s.until_step >= 0 ? ".until_step" : ".until");
}

StageSpec read_stage(const std::string& path, const YAML::Node& node, size_t i, bool last) {
  const std::string prefix = stage_key(i);
  if (!node.IsMap()) throw InputError(located(path, node), prefix, "expected a mapping (until, p_heads, ...)");
  StageSpec s;
  for (const auto& kv : node) {
    const Value v{kv.second, located(path, kv.second), prefix + "." + kv.first.Scalar()};
    const auto it = stage_fields().find(kv.first.Scalar());
    if (it == stage_fields().end()) v.fail("unknown key");
    it->second(s, v);
  }
  if (node["until"] && node["until_step"]) {
    throw InputError(located(path, node["until_step"]), prefix + ".until_step", "give until or until_step, not both");
  }
  // Only the last stage can end without saying where: at the end of the run.
  if (!last && !node["until"] && !node["until_step"]) {
    throw InputError(located(path, node), prefix + ".until",
                     "missing: give until (a fraction of the run) or until_step (an absolute step); only the last "
                     "stage may omit both");
  }
  return s;
}

// Ends of the same kind must increase; fractions and steps are compared by check_schedule for a given run.
void check_order(const std::string& path, const YAML::Node& stages, const std::vector<StageSpec>& parsed) {
  int last_by_fraction = -1, last_by_step = -1;  // stage indices
  for (size_t i = 0; i < parsed.size(); ++i) {
    const StageSpec& s = parsed[i];
    const bool by_step = s.until_step >= 0;
    int& prev = by_step ? last_by_step : last_by_fraction;
    if (prev >= 0) {
      const StageSpec& p = parsed[prev];
      const bool increasing = by_step ? s.until_step > p.until_step : s.until > p.until;
      if (!increasing) {
        const std::string bound = by_step ? std::to_string(p.until_step) : decimal(p.until);
        const char* implicit = stages[i]["until"] || by_step ? "" : " (without until the last stage ends at 1.0)";
        throw InputError(located(path, stages[i]), end_key(s, i),
                         std::string("stage ends must increase") + implicit + ", but " + end_key(p, prev) +
                             " is already " + bound);
      }
    }
    prev = static_cast<int>(i);
  }
}

std::string warning(const std::string& path, const std::string& key, const std::string& message) {
  return path + ": " + key + ": " + message;
}

// Sets that round to nothing, and forced layers that do not fit in the layer count.
void check_counts(const Schedule& sched, size_t i, const ModelShape& shape, int tp_ranks, HeadUnits units) {
  const StageSpec& s = sched.stages[i];
  const std::string prefix = stage_key(i);
  const auto require_some = [&](double p, int n, const char* key, const char* what, int at_least) {
    const int k = count_for(p, n);
    if (k == 0) {
      throw InputError(sched.path, prefix + "." + key,
                       "keeps round(" + decimal(p) + " * " + std::to_string(n) + ") = 0 of " +
                           std::to_string(n) + " " + what + "; at least one is needed");
    }
    if (k < at_least) {
      throw InputError(sched.path, prefix + "." + key,
                       "keeps round(" + decimal(p) + " * " + std::to_string(n) + ") = " + std::to_string(k) + " " +
                           what + ", fewer than the " + std::to_string(at_least) +
                           " tensor-parallel ranks, so some rank would have none");
    }
  };
  require_some(s.p_heads, units.count, "p_heads", units.size > 1 ? "key/value groups" : "heads", tp_ranks);
  require_some(s.p_mlp, shape.neurons(), "p_mlp", "MLP neurons", tp_ranks);
  if (s.layer_sampling != LayerSampling::uniform) return;
  require_some(s.p_layers, shape.n_layer, "p_layers", "layers", 1);
  const int forced = std::min<int>(s.keep_first_layer + s.keep_last_layer, shape.n_layer);
  const int k = count_for(s.p_layers, shape.n_layer);
  if (forced > k) {
    throw InputError(sched.path, prefix + ".p_layers",
                     "keep_first_layer and keep_last_layer need 2 active layers, but the stage keeps round(" +
                         decimal(s.p_layers) + " * " + std::to_string(shape.n_layer) + ") = " +
                         std::to_string(k) + " (the kept layers count toward that total)");
  }
}

}  // namespace

int count_for(double p, int n) { return static_cast<int>(std::llround(p * n)); }

int64_t Schedule::stage_end(size_t stage, int64_t total_steps) const {
  const StageSpec& s = stages[stage];
  return s.until_step >= 0 ? s.until_step : std::llround(s.until * static_cast<double>(total_steps));
}

size_t Schedule::stage_at(int64_t step, int64_t total_steps) const {
  for (size_t i = 0; i + 1 < stages.size(); ++i) {
    if (step < stage_end(i, total_steps)) return i;
  }
  return stages.size() - 1;
}

Schedule full_schedule() { return Schedule{"", {StageSpec{}}}; }

Schedule load_schedule(const std::string& path) {
  const YAML::Node root = load_yaml_file(path, "schedule");
  if (!root.IsMap()) throw InputError(path, "yaml", "the top level must be a mapping with stages");
  for (const auto& kv : root) {
    if (kv.first.Scalar() != "stages") throw InputError(located(path, kv.second), kv.first.Scalar(), "unknown key");
  }
  const YAML::Node stages = root["stages"];
  if (!stages) throw InputError(path, "stages", "missing: the schedule needs a list of stages");
  if (!stages.IsSequence()) throw InputError(located(path, stages), "stages", "expected a list of stages");
  if (stages.size() == 0) throw InputError(located(path, stages), "stages", "must list at least one stage");

  Schedule sched;
  sched.path = path;
  for (size_t i = 0; i < stages.size(); ++i) {
    sched.stages.push_back(read_stage(path, stages[i], i, i + 1 == stages.size()));
  }
  check_order(path, stages, sched.stages);
  return sched;
}

std::vector<std::string> check_schedule(const Schedule& sched, const ModelShape& shape, int64_t total_steps,
                                        int tp_ranks, HeadUnit unit) {
  std::vector<std::string> warnings;
  const std::string steps = "total_steps = " + std::to_string(total_steps);
  int64_t prev_end = 0;
  for (size_t i = 0; i < sched.stages.size(); ++i) {
    check_counts(sched, i, shape, tp_ranks, head_units(shape, unit));
    const StageSpec& s = sched.stages[i];
    const int64_t end = sched.stage_end(i, total_steps);
    const std::string at = "ends at step " + std::to_string(end);
    if (end > total_steps) throw InputError(sched.path, end_key(s, i), at + ", after the end of the run (" + steps + ")");
    if (end < prev_end) {
      throw InputError(sched.path, end_key(s, i),
                       at + ", before " + stage_key(i - 1) + " (step " + std::to_string(prev_end) + ") for " + steps);
    }
    if (end == prev_end) {
      warnings.push_back(warning(sched.path, stage_key(i), "is empty for " + steps + " (" + at + ", where it starts)"));
    }
    prev_end = end;
  }
  const size_t last = sched.stages.size() - 1;
  if (prev_end < total_steps) {
    throw InputError(sched.path, end_key(sched.stages[last], last),
                     "the last stage ends at step " + std::to_string(prev_end) + ", before the end of the run (" +
                         steps + ")");
  }
  if (!sched.stages[last].is_full()) {
    warnings.push_back(warning(sched.path, stage_key(last), "the last stage does not train the full model"));
  }
  return warnings;
}

}  // namespace est
