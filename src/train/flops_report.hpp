#pragma once
// `est flops`: the training FLOPs a config and its EST schedule will execute, per stage and in total, against
// the full model over the same steps, without training.
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.hpp"
#include "est/flops.hpp"
#include "est/schedule.hpp"

namespace est {

// SCHEDULE's FLOPs over CFG's run: its shape, context, batch, steps and subnetwork draws.
ScheduleFlops schedule_flops_for(const Config& cfg, const Schedule& schedule);

// Keys: flops, flops_full, saving, stages [{stage, first_step, end_step, p_heads, p_mlp, p_layers, flops,
// flops_full, ratio}], convention, config, schedule, steps, tokens_per_step.
nlohmann::json flops_report(const Config& cfg);
std::string format_flops_report(const nlohmann::json& report);

}  // namespace est
