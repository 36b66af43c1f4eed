#include "train/flops_report.hpp"

#include <cstdio>

#include "est/flops.hpp"
#include "est/sampler.hpp"
#include "train/trainer.hpp"

namespace est {

ScheduleFlops schedule_flops_for(const Config& cfg, const Schedule& schedule) {
  const ModelShape shape = cfg.shape();
  const int T = cfg.model.seq_len;
  return schedule_flops(shape, T, int64_t(cfg.train.batch_size) * T, schedule, sampler_for(cfg, shape), cfg.train.steps);
}

nlohmann::json flops_report(const Config& cfg) {
  const int64_t tokens = int64_t(cfg.train.batch_size) * cfg.model.seq_len;
  const Schedule schedule = schedule_for(cfg, cfg.shape());
  const ScheduleFlops f = schedule_flops_for(cfg, schedule);
  nlohmann::json stages = nlohmann::json::array();
  for (const StageFlops& s : f.stages) {
    const StageSpec& spec = schedule.stages[s.stage];
    stages.push_back({{"stage", s.stage + 1},
                      {"first_step", s.first_step},
                      {"end_step", s.end_step},
                      {"p_heads", spec.p_heads},
                      {"p_mlp", spec.p_mlp},
                      {"p_layers", spec.p_layers},
                      {"flops", s.flops},
                      {"flops_full", s.flops_full},
                      {"ratio", s.ratio()}});
  }
  return {{"config", cfg.path},
          {"schedule", cfg.est.schedule.empty() ? "(full model)" : cfg.est.schedule},
          {"steps", cfg.train.steps},
          {"tokens_per_step", tokens},
          {"convention", kFlopsConvention},
          {"flops", f.flops},
          {"flops_full", f.flops_full},
          {"saving", f.saving()},
          {"stages", stages}};
}

std::string format_flops_report(const nlohmann::json& r) {
  std::string out;
  char line[200];
  std::snprintf(line, sizeof line, "%s with %s: %lld steps of %lld tokens\n", r["config"].get<std::string>().c_str(),
                r["schedule"].get<std::string>().c_str(), r["steps"].get<long long>(),
                r["tokens_per_step"].get<long long>());
  out += line;
  std::snprintf(line, sizeof line, "%-6s %-15s %7s %6s %8s %12s %12s %7s\n", "stage", "steps", "p_heads", "p_mlp",
                "p_layers", "FLOPs", "full FLOPs", "ratio");
  out += line;
  for (const auto& s : r["stages"]) {
    const std::string steps =
        std::to_string(s["first_step"].get<long long>()) + "-" + std::to_string(s["end_step"].get<long long>() - 1);
    std::snprintf(line, sizeof line, "%-6d %-15s %7.3g %6.3g %8.3g %12.4e %12.4e %7.4f\n", s["stage"].get<int>(),
                  steps.c_str(), s["p_heads"].get<double>(), s["p_mlp"].get<double>(), s["p_layers"].get<double>(),
                  s["flops"].get<double>(), s["flops_full"].get<double>(), s["ratio"].get<double>());
    out += line;
  }
  std::snprintf(line, sizeof line, "total: %.4e FLOPs against %.4e for the full model: saving %.1f%%\n",
                r["flops"].get<double>(), r["flops_full"].get<double>(), 100.0 * r["saving"].get<double>());
  out += line;
  return out + "convention: " + r["convention"].get<std::string>() + "\n";
}

}  // namespace est
