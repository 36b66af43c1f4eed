#pragma once
// A study's directory: config.yaml (the points' base config), manifest.json (the plan, and each point's
// status), and a run directory and log per point. Paths in the manifest are relative to its directory. The
// manifest is rewritten whole (atomically, under a lock: Slurm array tasks may finish together) as points
// start and end.
#include <nlohmann/json.hpp>
#include <string>

#include "jobs/scaling_study.hpp"
#include "jobs/study_plan.hpp"

namespace est {

constexpr const char* kStudyKind = "est-study";

// Statuses of a point: pending, running, done (its summary.json is written), failed (exit_status says how).
nlohmann::json study_manifest(const StudyPlan& plan, const std::string& runner, const StudyTools& tools);

// Creates DIR with PLAN's study, or opens the same study left there earlier (then points already done stay done).
// A different study in DIR is an InputError unless FORCE replaces it; so is a DIR that holds no study.
nlohmann::json open_study(const std::string& dir, const StudyPlan& plan, const std::string& runner,
                          const StudyTools& tools, bool force);

// Sets point INDEX's status (and exit status, null unless failed) in DIR/manifest.json.
void record_point(const std::string& dir, size_t index, const std::string& status, int exit_status = 0);

// A point is done once its run wrote summary.json, whatever the manifest last said (a run may finish after its
// runner was killed).
bool point_finished(const std::string& dir, const nlohmann::json& point);

nlohmann::json read_study_manifest(const std::string& dir);

}  // namespace est
