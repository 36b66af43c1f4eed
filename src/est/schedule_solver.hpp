#pragma once
// `est schedule solve`: the three-stage EST schedule (est-method.md §3) whose training-FLOPs saving on a config
// is a given target (§6). The rates and stage 1's length are given; stage 2's end f2 is solved on the 0.001 grid
// of `until`, each candidate's saving counted by schedule_flops exactly as `est flops` counts it.
#include <string>
#include <vector>

#include "config/config.hpp"
#include "est/flops.hpp"
#include "est/schedule.hpp"

namespace est {

// How far from the target a solved saving may be.
constexpr double kSavingTolerance = 0.005;

struct ScheduleSolveRequest {
  std::string config_path;
  std::vector<std::string> overrides;  // --set key=value
  double saving = 0;                   // the target, in (0, 1)
  double p_heads = 0.5, p_mlp = 0.5, p_layers = 0.5;
  double stage1 = 0.20;                // f1: stage 1's end, a fraction of the run
  std::string out;                     // where it is written ("" for stdout): part of the command it records
};

struct SolvedSchedule {
  ScheduleSolveRequest request;
  Config config;      // request.config_path with its overrides
  Schedule schedule;  // until f1, until f2, until 1.0
  ScheduleFlops flops;

  double f1() const { return schedule.stages[0].until; }
  double f2() const { return schedule.stages[1].until; }
};

// Throws InputError naming the flag (or the config's file and key) for a target the rates and f1 cannot reach,
// or that the run's whole steps cannot bring within kSavingTolerance.
SolvedSchedule solve_schedule(const ScheduleSolveRequest& request);

// The schedule as YAML, its header comments carrying the arithmetic and the command that produced it.
std::string format_solved_schedule(const SolvedSchedule& solved);

// Writes the YAML to PATH atomically, reads it back as `est flops --set est.schedule=PATH` would and returns
// the saving it counts there.
double write_solved_schedule(const SolvedSchedule& solved, const std::string& path);

}  // namespace est
