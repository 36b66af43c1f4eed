#include "jobs/scaling_study.hpp"

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <regex>

#include "config/config.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/timestamp.hpp"
#include "jobs/slurm_script.hpp"
#include "sim/simulation.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

constexpr int kFormatVersion = 1;

// An existing out_dir is replaced only when it is empty or, forced, an earlier study: --force must not wipe a
// directory that merely was named by mistake (".", a run directory).
void check_out_dir(const std::string& dir, bool force) {
  if (dir.empty()) throw InputError("", "--out", "no output directory given");
  if (!fs::exists(dir)) return;
  if (!fs::is_directory(dir)) throw InputError("", "--out", dir + " exists and is not a directory");
  if (fs::is_empty(dir)) return;
  if (!force) throw InputError("", "--out", dir + " is not empty (use --force to replace an earlier study)");
  if (!fs::exists(fs::path(dir) / "manifest.json"))
    throw InputError("", "--out", dir + " is not empty and holds no study (no manifest.json): not replacing it");
}

std::string batch_script(const std::string& name, const ScalingPoint& p, const ScalingStudyRequest& request,
                         const StudyTools& tools, const fs::path& dir) {
  const std::string run_dir = (dir / name).string();
  std::string s = "#!/bin/bash\n";
  s += "# est scaling study (" + request.mode + "), " + std::to_string(p.nodes) + " node(s): " +
       std::to_string(p.ranks) + " ranks = tp " + std::to_string(p.tp) + " x dp " + std::to_string(p.dp) +
       ", global batch " + std::to_string(p.global_batch) + ".\n";
  s += "# Written by est jobs scaling; submit with jobs/submit-study " + shell_quote(dir.string()) + ".\n";
  s += "#SBATCH --job-name=" + shell_quote("est-" + name) + "\n";
  s += "#SBATCH --nodes=" + std::to_string(p.nodes) + "\n";
  s += "#SBATCH --ntasks-per-node=" + std::to_string(request.ranks_per_node) + "\n";
  s += "#SBATCH --time=" + request.time_limit + "\n";
  s += "#SBATCH --output=" + shell_quote(run_dir + ".log") + "\n";
  s += "#SBATCH --open-mode=append\n";
  s += "#SBATCH --chdir=" + shell_quote(tools.workdir) + "\n";
  s += "#SBATCH --signal=B:USR1@120\n";
  s += "#SBATCH --requeue\n";
  s += "export EST_LAUNCHER=" + request.launcher + "\n";
  s += ": \"${EST_BIN:=" + shell_quote(tools.est_binary) + "}\"\n";
  s += "export EST_BIN\n";
  s += "exec " + shell_quote(tools.launch_script) + " " + shell_quote((dir / "config.yaml").string()) +
       " --set train.batch_size=" + std::to_string(p.global_batch) + " --set parallel.tp=" + std::to_string(p.tp) +
       " --set output.dir=" + shell_quote(run_dir) + "\n";
  return s;
}

}  // namespace

StudyTools default_study_tools() {
  return {fs::read_symlink("/proc/self/exe").string(), EST_JOBS_DIR "/launch", fs::current_path().string()};
}

nlohmann::json write_scaling_study(const ScalingStudyRequest& request, const StudyTools& tools) {
  ScalingRequest plan_request;
  plan_request.nodes = parse_node_list(request.nodes, "--nodes");
  plan_request.mode = parse_scaling_mode(request.mode, "--mode");
  plan_request.tp = request.tp;
  plan_request.ranks_per_node = request.ranks_per_node;
  check_launcher(request.launcher);
  check_time_limit(request.time_limit);
  check_out_dir(request.out_dir, request.force);
  const Config cfg = load_config(request.config_path, request.overrides);
  const std::vector<ScalingPoint> points = plan_scaling(cfg, plan_request);
  const std::optional<Cluster> cluster =
      request.cluster_path.empty() ? std::nullopt : std::optional<Cluster>(read_cluster(request.cluster_path));

  const fs::path dir = fs::absolute(request.out_dir).lexically_normal();
  nlohmann::json manifest = {
      {"kind", "est-scaling-study"},
      {"format_version", kFormatVersion},
      {"mode", request.mode},
      {"config", "config.yaml"},
      {"source_config", fs::absolute(request.config_path).lexically_normal().string()},
      {"ranks_per_node", request.ranks_per_node},
      {"tp", points.front().tp},
      {"launcher", request.launcher},
      {"time_limit", request.time_limit},
      {"created", iso_utc_now()},
      {"cluster", cluster ? nlohmann::json{{"file", fs::absolute(request.cluster_path).lexically_normal().string()},
                                           {"name", cluster->name}}
                          : nlohmann::json()},
      {"points", nlohmann::json::array()},
  };
  std::vector<std::pair<std::string, std::string>> files = {{"config.yaml", cfg.yaml_text + "\n"}};
  for (const ScalingPoint& p : points) {
    const std::string name = request.mode + "-n" + std::to_string(p.nodes);
    files.emplace_back(name + ".sbatch", batch_script(name, p, request, tools, dir));
    manifest["points"].push_back({{"nodes", p.nodes},
                                  {"ranks", p.ranks},
                                  {"tp", p.tp},
                                  {"dp", p.dp},
                                  {"global_batch", p.global_batch},
                                  {"per_rank_batch", p.per_rank_batch},
                                  {"script", name + ".sbatch"},
                                  {"output_dir", name},
                                  {"trace", name + "/trace.h5"},
                                  {"log", name + ".log"},
                                  {"simulated", cluster ? simulate_point(cfg, *cluster, p) : nlohmann::json()}});
  }
  files.emplace_back("manifest.json", manifest.dump(2) + "\n");

  // Built beside the destination under a temporary name, so the study appears whole or not at all.
  fs::create_directories(dir.parent_path());
  const fs::path staging = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(staging);
  try {
    fs::create_directory(staging);
    for (const auto& [name, text] : files) write_text_atomic((staging / name).string(), text);
    fs::remove_all(dir);
    fs::rename(staging, dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw;
  }
  return manifest;
}

}  // namespace est
