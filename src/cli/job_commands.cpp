#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_status.hpp"
#include "config/config.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "jobs/scaling_study.hpp"
#include "jobs/study_array.hpp"
#include "jobs/study_manifest.hpp"
#include "jobs/study_runner.hpp"
#include "sim/calibration.hpp"
#include "sim/simulation.hpp"
#include "train/stop_request.hpp"

namespace est::cli {
namespace {

struct SimulateOptions {
  std::string config, cluster, nodes = "1", mode = "strong", out, name = "calibrated";
  std::vector<std::string> overrides, calibration_traces;
  ScalingRequest request;
  bool json = false, ranks_per_node_given = false;
};

void calibrate_cluster(const SimulateOptions& o) {
  if (o.out.empty()) throw InputError("", "--out", "--calibrate needs --out CLUSTER.yaml");
  if (world_rank() != 0) return;
  const auto cal = calibrate(o.calibration_traces, o.name);
  write_text_atomic(o.out, format_calibration(cal, o.calibration_traces));
  std::printf("est: wrote %s (GEMM %.4g FLOP/s, %.4g s per GEMM, %.4g B/s, alpha %.4g s, beta %.4g s/B)\n",
              o.out.c_str(), cal.cluster.peak_flops, cal.cluster.gemm.launch_seconds, cal.cluster.memory_bandwidth,
              cal.cluster.intra.alpha, cal.cluster.intra.beta);
}

void simulate_run(SimulateOptions& o) {
  if (o.config.empty()) throw InputError("", "--config", "simulate needs --config (or --calibrate)");
  if (o.cluster.empty()) throw InputError("", "--cluster", "simulate needs --cluster CLUSTER.yaml");
  const Config cfg = load_config(o.config, o.overrides);
  const Cluster cluster = read_cluster(o.cluster);
  o.request.nodes = parse_node_list(o.nodes, "--nodes");
  o.request.mode = parse_scaling_mode(o.mode, "--mode");
  if (!o.ranks_per_node_given) o.request.ranks_per_node = cluster.ranks_per_node;
  const auto sim = simulate(cfg, cluster, o.request);
  if (world_rank() == 0) std::printf("%s", o.json ? (sim.dump(2) + "\n").c_str() : format_simulation(sim).c_str());
}

Command simulate_command(CLI::App& app) {
  auto o = std::make_shared<SimulateOptions>();
  auto* c = app.add_subcommand(
      "simulate", "Predict EST and baseline step time, run time and energy on a cluster, or fit a cluster file to traces");
  add_config_options(c, o->config, o->overrides, false);
  c->add_option("--cluster", o->cluster, "Cluster file (jobs/clusters/*.yaml)");
  c->add_option("--nodes", o->nodes, "Node counts, e.g. 1,2,4 (default 1)");
  c->add_option("--mode", o->mode, "strong (same global batch) or weak (same batch per rank)");
  c->add_option("--tp", o->request.tp, "Tensor-parallel size (default: the config's parallel.tp)");
  auto* rpn = c->add_option("--ranks-per-node", o->request.ranks_per_node,
                            "MPI ranks per node (default: the cluster's node.ranks_per_node)");
  c->add_flag("--json", o->json, "Print JSON");
  c->add_option("--calibrate", o->calibration_traces, "Instead: fit a cluster file to these trace.h5 files")
      ->excludes("--config")
      ->excludes("--cluster");
  c->add_option("--out", o->out, "The cluster file --calibrate writes");
  c->add_option("--name", o->name, "Its name");
  return {c, [o, rpn] {
            o->ranks_per_node_given = rpn->count() > 0;
            return agreed([&] { o->calibration_traces.empty() ? simulate_run(*o) : calibrate_cluster(*o); });
          }};
}

Command scaling_command(CLI::App& app) {
  auto r = std::make_shared<ScalingStudyRequest>();
  auto* jobs = app.add_subcommand("jobs", "Slurm job scripts");
  jobs->require_subcommand(1);
  auto* c = jobs->add_subcommand("scaling", "Write a strong or weak scaling study: a batch script per node count");
  add_config_options(c, r->config_path, r->overrides);
  c->add_option("--nodes", r->nodes, "Node counts, e.g. 1,2,4,8")->required();
  c->add_option("--mode", r->mode, "strong (same global batch) or weak (same batch per rank)")->required();
  c->add_option("--tp", r->tp, "Tensor-parallel size (default: the config's parallel.tp)");
  c->add_option("--ranks-per-node", r->ranks_per_node, "MPI ranks per node");
  c->add_option("--launcher", r->launcher, "srun or mpirun");
  c->add_option("--time", r->time_limit, "Time limit of every job, HH:MM:SS");
  c->add_option("--out", r->out_dir, "Study directory (scripts, config.yaml, manifest.json)")->required();
  c->add_flag("--force", r->force, "Replace an earlier study in --out");
  c->add_option("--cluster", r->cluster_path, "Cluster file: record est simulate's prediction per point");
  return {c, [r] {
            return agreed([&] {
              if (world_rank() != 0) return;
              const auto manifest = write_scaling_study(*r, default_study_tools());
              std::printf("est: wrote a %s scaling study of %zu point(s) to %s; submit it with jobs/submit-study %s\n",
                          r->mode.c_str(), manifest["points"].size(), r->out_dir.c_str(), r->out_dir.c_str());
            });
          }};
}

struct StudyOptions {
  std::string spec, out, time_limit = "04:00:00", launcher = "srun";
  std::vector<std::string> overrides;
  bool force = false, slurm = false;
};

// 0 when every point is done (or, with --slurm, the array is written), kExitResumable when stopped by a signal,
// 1 when a point failed.
int finish_study(const StudyOutcome& outcome, const std::string& out) {
  std::printf("est study: %zu done now, %zu done before, %zu failed; manifest %s/manifest.json\n", outcome.done,
              outcome.skipped, outcome.failed, out.c_str());
  if (outcome.interrupted) return kExitResumable;
  if (outcome.failed == 0) return 0;
  report(std::to_string(outcome.failed) + " point(s) of the study in " + out + " failed: see their logs");
  return 1;
}

// The points run as child processes, so the study runs on one rank only.
int run_study(const StudyOptions& o) {
  if (world_size() > 1) {
    if (world_rank() == 0) report("est study runs its points itself: start it without mpirun or srun");
    return kExitBadInput;
  }
  StudyOutcome outcome;
  if (const int rc = agreed([&] {
        const StudyPlan plan = plan_study(o.spec, o.overrides, o.out);
        const StudyTools tools = default_study_tools();
        const auto manifest = open_study(o.out, plan, o.slurm ? "slurm" : "local", tools, o.force);
        if (o.slurm) {
          const std::string script = write_study_array(o.out, manifest, tools, o.time_limit, o.launcher);
          std::printf("est: wrote %s, an array of %zu point(s); submit it with jobs/submit-study %s\n", script.c_str(),
                      manifest["points"].size(), o.out.c_str());
          return;
        }
        outcome = run_study_locally(o.out, tools.est_binary, stdout);
      }))
    return rc;
  return o.slurm ? 0 : finish_study(outcome, o.out);
}

Command study_command(CLI::App& app) {
  auto o = std::make_shared<StudyOptions>();
  auto* c = app.add_subcommand(
      "study", "Run every variant of an EST study at every seed (resumable), here or as a Slurm job array");
  c->add_option("SPEC", o->spec, "Study file (YAML: config, seeds, baseline, variants)")->required();
  c->add_option("--out", o->out, "Study directory (config.yaml, manifest.json, a run per point)")->required();
  c->add_option("--set", o->overrides, "Override a config key for every point: key=value (repeatable)");
  c->add_flag("--force", o->force, "Replace a different study in --out");
  c->add_flag("--slurm", o->slurm, "Write DIR/study.sbatch, a job array of the points, instead of running them");
  c->add_option("--time", o->time_limit, "--slurm: time limit of every array task, HH:MM:SS (default 04:00:00)");
  c->add_option("--launcher", o->launcher, "--slurm: srun or mpirun (default srun)");
  return {c, [o] { return run_study(*o); }};
}

}  // namespace

std::vector<Command> add_job_commands(CLI::App& app) {
  return {simulate_command(app), scaling_command(app), study_command(app)};
}

}  // namespace est::cli
