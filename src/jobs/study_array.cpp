#include "jobs/study_array.hpp"

#include <filesystem>

#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "jobs/slurm_script.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

std::string case_arm(size_t index, const nlohmann::json& point) {
  std::string s = "  " + std::to_string(index) + ") point=" + shell_quote(point.at("name")) + "; args=(";
  for (const auto& o : point.at("overrides")) s += " --set " + shell_quote(o.get<std::string>());
  return s + " ) ;;\n";
}

}  // namespace

std::string write_study_array(const std::string& dir, const nlohmann::json& manifest, const StudyTools& tools,
                              const std::string& time_limit, const std::string& launcher) {
  check_time_limit(time_limit);
  check_launcher(launcher);
  const fs::path d = fs::absolute(dir).lexically_normal();
  const auto& points = manifest.at("points");
  std::string s = "#!/bin/bash\n";
  s += "# est study of " + manifest.at("spec").get<std::string>() + ": one array task per point (" +
       std::to_string(points.size()) + ").\n";
  s += "# Written by est study --slurm; submit with jobs/submit-study " + shell_quote(d.string()) + ".\n";
  s += "#SBATCH --job-name=est-study\n";
  s += "#SBATCH --array=0-" + std::to_string(points.size() - 1) + "\n";
  s += "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=1\n";
  s += "#SBATCH --time=" + time_limit + "\n";
  s += "#SBATCH --output=" + shell_quote((d / "slurm-%a.out").string()) + "\n";
  s += "#SBATCH --open-mode=append\n";
  s += "#SBATCH --chdir=" + shell_quote(tools.workdir) + "\n";
  s += "#SBATCH --signal=B:USR1@120\n#SBATCH --requeue\n";
  s += "export EST_LAUNCHER=" + launcher + "\n";
  s += ": \"${EST_BIN:=" + shell_quote(tools.est_binary) + "}\"\nexport EST_BIN\n";
  s += "case ${SLURM_ARRAY_TASK_ID:?not an array task} in\n";
  for (size_t i = 0; i < points.size(); ++i) s += case_arm(i, points[i]);
  s += "  *) echo \"est study: no point $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n";
  s += "study=" + shell_quote(d.string()) + "\n";
  s += "# A point finished by an earlier submission is not run again.\n";
  s += "[[ -f $study/$point/summary.json ]] && exit 0\n";
  s += "exec >>\"$study/$point.log\" 2>&1\n";
  s += "exec " + shell_quote(tools.launch_script) + " \"$study/config.yaml\" \"${args[@]}\"\n";
  const std::string path = (d / "study.sbatch").string();
  write_text_atomic(path, s);
  fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
  return path;
}

}  // namespace est
