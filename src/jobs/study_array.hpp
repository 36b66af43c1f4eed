#pragma once
// A study as one Slurm job array (`est study --slurm`): DIR/study.sbatch runs point SLURM_ARRAY_TASK_ID through
// jobs/launch, so each point checkpoints and requeues at its time limit like any est job. Submit it with
// jobs/submit-study DIR; submitting it again runs only the points without a summary.json.
#include <nlohmann/json.hpp>
#include <string>

#include "jobs/scaling_study.hpp"

namespace est {

// Writes DIR/study.sbatch for MANIFEST's points. TIME_LIMIT is every task's sbatch --time, LAUNCHER srun or
// mpirun; InputError for either when malformed.
std::string write_study_array(const std::string& dir, const nlohmann::json& manifest, const StudyTools& tools,
                              const std::string& time_limit, const std::string& launcher);

}  // namespace est
