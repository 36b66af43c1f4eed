#pragma once
// `est simulate`: the predicted step time, run time and energy of a config's EST schedule and of its full-model
// baseline at the points of a scaling study, on a cluster described by a cluster file.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "jobs/scaling_plan.hpp"
#include "sim/cluster.hpp"

namespace est {

// One point: {nodes, ranks, tp, dp, global_batch, per_rank_batch, stages: [{stage, steps, step_seconds,
// compute_seconds, tp_comm_seconds, dp_reduce_seconds, dp_exposed_seconds (the gradient sum, all and the part the
// backward pass does not hide), imbalance, oversubscription}], est: {step_seconds (mean),
// run_seconds, energy_joules, tokens_per_second}, baseline: {the same}, time_saving, energy_saving}. `est jobs
// scaling` embeds it in each job's manifest. The config's runtime.threads is each rank's compute threads.
nlohmann::json simulate_point(const Config& cfg, const Cluster& cluster, const ScalingPoint& point);
// {cluster, config, mode, points: [simulate_point for each point of plan_scaling(cfg, request)]}.
nlohmann::json simulate(const Config& cfg, const Cluster& cluster, const ScalingRequest& request);
std::string format_simulation(const nlohmann::json& simulation);

}  // namespace est
