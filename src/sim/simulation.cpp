#include "sim/simulation.hpp"

#include <cmath>
#include <cstdio>

#include "est/flops.hpp"
#include "est/sampler.hpp"
#include "bytes_text.hpp"
#include "sim/cost_model.hpp"
#include "train/memory_plan.hpp"
#include "train/trainer.hpp"

namespace est {
namespace {

using nlohmann::json;

// The rank with the most work sets the pace: of an uneven split of the batch it holds the rounded-up share.
// The tensor-parallel group is consecutive ranks, the data-parallel group strided by tp: each leaves the node
// once it is larger than what a node holds. All the node's ranks run `threads` compute threads each.
RankStep rank_step(const ScalingPoint& p, int ranks_per_node, const Config& cfg) {
  RankStep r;
  r.reduction = {cfg.parallel.bucket_mb * double(1 << 20), cfg.parallel.overlap};
  r.sequences = std::ceil(p.per_rank_batch);
  r.tp = p.tp;
  r.dp = p.dp;
  r.tp_inter_node = p.tp > ranks_per_node;
  r.dp_inter_node = p.ranks > ranks_per_node;
  r.ranks_on_node = ranks_per_node;
  r.threads = cfg.runtime.threads;
  return r;
}

// Likewise of the heads and neurons split over the tensor-parallel ranks.
double local_units(int units, int tp) { return std::ceil(double(units) / tp); }

json run_totals(const Cluster& c, const ScalingPoint& p, int T, int64_t steps, double run_seconds) {
  const double energy = c.power_watts * p.nodes * run_seconds;
  return {{"step_seconds", steps > 0 ? run_seconds / double(steps) : 0.0},
          {"run_seconds", run_seconds},
          {"energy_joules", energy},
          {"tokens_per_second", run_seconds > 0 ? double(steps) * p.global_batch * T / run_seconds : 0.0}};
}

double saving(double est, double baseline) { return baseline > 0 ? 1.0 - est / baseline : 0.0; }

// The kernels' buffers of the point's busiest rank (the memory plan's device items) against the cluster's memory
// per rank; fits is null when the cluster file does not give it.
json point_memory(const Config& cfg, const Cluster& c, const ScalingPoint& p) {
  Config at = cfg;
  at.train.batch_size = p.global_batch;
  const MemoryPlan plan = plan_memory(at, at.shape(), RankLayout{p.tp, p.dp, max_batch_share(at, p.dp)});
  const MemoryItem* largest = nullptr;
  for (const MemoryItem& i : plan.items)
    if (i.device && (!largest || i.bytes > largest->bytes)) largest = &i;
  json j = {{"device_bytes", plan.device_bytes()},
            {"largest", largest->name},
            {"largest_bytes", largest->bytes},
            {"memory_per_rank", nullptr},
            {"fits", nullptr}};
  if (c.memory_per_rank > 0) {
    j["memory_per_rank"] = c.memory_per_rank;
    j["fits"] = double(plan.device_bytes()) <= c.memory_per_rank;
  }
  return j;
}

std::string format_point_memory(const json& m) {
  std::string text = "  memory: " + format_bytes(m["device_bytes"].get<double>()) + " of kernel buffers per rank";
  if (m["fits"].is_null()) return text + " (the cluster file gives no node.memory_per_rank)\n";
  text += ", " + format_bytes(m["memory_per_rank"].get<double>()) + " per rank on the cluster: ";
  if (m["fits"].get<bool>()) return text + "fits\n";
  return text + "does not fit (largest: " + m["largest"].get<std::string>() + ", " +
         format_bytes(m["largest_bytes"].get<double>()) + ")\n";
}

}  // namespace

json simulate_point(const Config& cfg, const Cluster& cluster, const ScalingPoint& point) {
  const ModelShape shape = cfg.shape();
  const int T = cfg.model.seq_len;
  const int ranks_per_node = point.ranks / point.nodes;
  const Schedule schedule = schedule_for(cfg, shape);
  const SubnetworkSampler sampler = sampler_for(cfg, shape);
  const ScheduleFlops flops =
      schedule_flops(shape, T, int64_t(point.global_batch) * T, schedule, sampler, cfg.train.steps);

  json stages = json::array();
  double est_seconds = 0;
  for (const StageFlops& f : flops.stages) {
    const int64_t steps = f.end_step - f.first_step;
    RankStep r = rank_step(point, ranks_per_node, cfg);
    r.active_layers = f.active_layers;
    r.heads = local_units(f.heads, point.tp);
    r.neurons = local_units(f.neurons, point.tp);
    const StepCost cost = step_cost(cluster, step_work(shape, T, r));
    est_seconds += double(steps) * cost.step_seconds();
    stages.push_back({{"stage", f.stage + 1},
                      {"steps", steps},
                      {"step_seconds", cost.step_seconds()},
                      {"compute_seconds", cost.compute_seconds},
                      {"tp_comm_seconds", cost.tp_comm_seconds},
                      {"dp_reduce_seconds", cost.dp_reduce_seconds},
                      {"dp_exposed_seconds", cost.dp_exposed_seconds},
                      {"imbalance", cluster.imbalance},
                      {"oversubscription", oversubscription(cluster, r.ranks_on_node, r.threads)}});
  }

  RankStep full = rank_step(point, ranks_per_node, cfg);
  full.active_layers = shape.n_layer;
  full.heads = local_units(shape.n_head, point.tp);
  full.neurons = local_units(shape.neurons(), point.tp);
  const double baseline_seconds =
      double(cfg.train.steps) * step_cost(cluster, step_work(shape, T, full)).step_seconds();

  const json est = run_totals(cluster, point, T, cfg.train.steps, est_seconds);
  const json baseline = run_totals(cluster, point, T, cfg.train.steps, baseline_seconds);
  return {{"nodes", point.nodes},
          {"ranks", point.ranks},
          {"tp", point.tp},
          {"dp", point.dp},
          {"global_batch", point.global_batch},
          {"per_rank_batch", point.per_rank_batch},
          {"stages", stages},
          {"memory", point_memory(cfg, cluster, point)},
          {"est", est},
          {"baseline", baseline},
          {"time_saving", saving(est_seconds, baseline_seconds)},
          {"energy_saving", saving(est["energy_joules"].get<double>(), baseline["energy_joules"].get<double>())}};
}

json simulate(const Config& cfg, const Cluster& cluster, const ScalingRequest& request) {
  json points = json::array();
  for (const ScalingPoint& p : plan_scaling(cfg, request)) points.push_back(simulate_point(cfg, cluster, p));
  return {{"cluster", cluster.name},
          {"config", cfg.path},
          {"model", describe(cfg.shape())},
          {"mode", to_string(request.mode)},
          {"points", points}};
}

std::string format_simulation(const json& sim) {
  std::string out;
  char line[240];
  std::snprintf(line, sizeof line, "%s (%s) on %s, %s scaling\n", sim["config"].get<std::string>().c_str(),
                sim["model"].get<std::string>().c_str(), sim["cluster"].get<std::string>().c_str(),
                sim["mode"].get<std::string>().c_str());
  out += line;
  for (const json& p : sim["points"]) {
    std::snprintf(line, sizeof line, "\n%d node(s), %d ranks (tp %d x dp %d), batch %d (%.3g per dp rank)\n",
                  p["nodes"].get<int>(), p["ranks"].get<int>(), p["tp"].get<int>(), p["dp"].get<int>(),
                  p["global_batch"].get<int>(), p["per_rank_batch"].get<double>());
    out += line;
    std::snprintf(line, sizeof line, "  %-6s %7s %12s %12s %12s %12s %12s\n", "stage", "steps", "step s",
                  "compute s", "tp comm s", "dp sum s", "exposed s");
    out += line;
    for (const json& s : p["stages"]) {
      std::snprintf(line, sizeof line, "  %-6d %7lld %12.4e %12.4e %12.4e %12.4e %12.4e\n", s["stage"].get<int>(),
                    s["steps"].get<long long>(), s["step_seconds"].get<double>(), s["compute_seconds"].get<double>(),
                    s["tp_comm_seconds"].get<double>(), s["dp_reduce_seconds"].get<double>(),
                    s["dp_exposed_seconds"].get<double>());
      out += line;
    }
    for (const char* run : {"est", "baseline"}) {
      const json& r = p[run];
      std::snprintf(line, sizeof line, "  %-8s run %10.4g s  %10.4g J  %10.4g tok/s\n", run,
                    r["run_seconds"].get<double>(), r["energy_joules"].get<double>(),
                    r["tokens_per_second"].get<double>());
      out += line;
    }
    std::snprintf(line, sizeof line, "  saving: time %.1f%%, energy %.1f%%\n", 100 * p["time_saving"].get<double>(),
                  100 * p["energy_saving"].get<double>());
    out += line;
    out += format_point_memory(p["memory"]);
  }
  return out;
}

}  // namespace est
