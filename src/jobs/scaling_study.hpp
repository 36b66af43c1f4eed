#pragma once
// A scaling study on disk, ready to submit: `est jobs scaling` writes into one directory the effective config, a
// Slurm batch script per point of plan_scaling() and manifest.json, which records the grid and where each run
// leaves its trace. The scripts exec jobs/launch, so every point checkpoints and requeues at its time limit.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "jobs/scaling_plan.hpp"

namespace est {

struct ScalingStudyRequest {
  std::string config_path;
  std::vector<std::string> overrides;  // --set key=value
  std::string nodes;                   // "1,2,4,8"
  std::string mode;                    // strong | weak
  int tp = 0;                          // 0: the config's parallel.tp
  int ranks_per_node = 1;
  std::string launcher = "srun";       // srun | mpirun
  std::string time_limit = "01:00:00";  // sbatch --time of every point
  std::string out_dir;
  bool force = false;  // replace a non-empty out_dir
  std::string cluster_path;  // a cluster file: each point carries est simulate's prediction ("" : none)
};

// Where the generated scripts find things; absolute paths.
struct StudyTools {
  std::string est_binary;     // the est that runs the points (EST_BIN)
  std::string launch_script;  // jobs/launch
  std::string workdir;        // the jobs' working directory: relative paths in the config are relative to it
};

// This est executable, the jobs/ of the source tree it was built from, and the current directory.
StudyTools default_study_tools();

// Writes the study into request.out_dir all at once (built under a temporary name, then renamed) and returns the
// manifest. InputError for bad input (config, nodes, mode, a point that cannot run, launcher, time, cluster file,
// a non-empty out_dir without force); nothing is left behind then.
nlohmann::json write_scaling_study(const ScalingStudyRequest& request, const StudyTools& tools);

}  // namespace est
