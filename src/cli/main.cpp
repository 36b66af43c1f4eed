// est: the command line. Bad input of any kind ends with one "est: error: ..." line and exit status 2; a training
// run stopped by SIGUSR1 or SIGTERM checkpoints and exits with status 75 (resume with --resume auto).
//
// Under MPI every rank runs the same command. Errors while setting up (config, data, model file) are agreed on:
// the lowest failing rank reports and every rank exits with its status. An error once training runs (the
// others may be waiting in a collective) aborts the whole job, so it ends instead of hanging.
#include <hdf5.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>

#include "collective_error.hpp"
#include "config/config.hpp"
#include "data/prepare.hpp"
#include "est/schedule_solver.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/inspect.hpp"
#include "jobs/scaling_study.hpp"
#include "jobs/study_array.hpp"
#include "jobs/study_manifest.hpp"
#include "jobs/study_runner.hpp"
#include "parallel/failure_agreement.hpp"
#include "sim/calibration.hpp"
#include "sim/simulation.hpp"
#include "train/bench.hpp"
#include "train/flops_report.hpp"
#include "train/memory_plan.hpp"
#include "train/runtime.hpp"
#include "train/sample.hpp"
#include "train/step.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"

namespace {

constexpr int kExitBadInput = 2;

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Runs f; an exception becomes its message and exit status. A CollectiveError that another rank reports leaves
// the message empty.
int attempt(const std::function<void()>& f, std::string& message) {
  try {
    f();
    return 0;
  } catch (const est::CollectiveError& e) {
    if (e.reports()) message = e.what();
    return e.status();
  } catch (const std::exception& e) {
    message = e.what();
    return est::exit_status_of(std::current_exception());
  }
}

void report(const std::string& message) { std::fprintf(stderr, "est: error: %s\n", message.c_str()); }

// Every rank runs f; if any fails, the lowest failing rank reports and all return its status.
int agreed(const std::function<void()>& f) {
  std::string message;
  const int status = attempt(f, message);
  // MINLOC over (rank if failed with a message, status): the lowest failing rank that reports, and its status.
  int mine[2] = {status && !message.empty() ? world_rank() : INT_MAX, status}, first[2];
  MPI_Allreduce(mine, first, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD);
  if (first[0] == INT_MAX) return status;
  if (first[0] == world_rank()) report(message);
  return first[1];
}

// f may fail on one rank while the others wait in a collective: then the whole job ends. A diverged run fails on
// every rank at once, so it is reported once and ends without an abort.
int or_abort(const std::function<void()>& f) {
  std::string message;
  int status = 1;
  try {
    f();
    return 0;
  } catch (const est::TrainingDiverged& e) {
    if (world_rank() == 0) report(e.what());
    return 1;
  } catch (const est::CollectiveError& e) {
    if (e.reports()) report(e.what());
    return e.status();
  } catch (const est::InputError& e) {
    message = e.what();
    status = kExitBadInput;
  } catch (const std::exception& e) {
    message = e.what();
  }
  report(message);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, status);
  return status;
}

// `est study`: 0 when every point is done (or, with --slurm, the array is written), kExitResumable when stopped
// by a signal, 1 when a point failed. It runs its points as child processes, so it runs on one rank only.
int run_study(const std::string& spec, const std::vector<std::string>& overrides, const std::string& out, bool force,
              bool slurm, const std::string& time_limit, const std::string& launcher) {
  if (int size = 1; MPI_Comm_size(MPI_COMM_WORLD, &size), size > 1) {
    if (world_rank() == 0) report("est study runs its points itself: start it without mpirun or srun");
    return kExitBadInput;
  }
  est::StudyOutcome outcome;
  if (const int rc = agreed([&] {
        const est::StudyPlan plan = est::plan_study(spec, overrides, out);
        const est::StudyTools tools = est::default_study_tools();
        const auto manifest = est::open_study(out, plan, slurm ? "slurm" : "local", tools, force);
        if (slurm) {
          const std::string script = est::write_study_array(out, manifest, tools, time_limit, launcher);
          std::printf("est: wrote %s, an array of %zu point(s); submit it with jobs/submit-study %s\n", script.c_str(),
                      manifest["points"].size(), out.c_str());
          return;
        }
        outcome = est::run_study_locally(out, tools.est_binary, stdout);
      }))
    return rc;
  if (slurm) return 0;
  std::printf("est study: %zu done now, %zu done before, %zu failed; manifest %s/manifest.json\n", outcome.done,
              outcome.skipped, outcome.failed, out.c_str());
  if (outcome.interrupted) return est::kExitResumable;
  if (outcome.failed) {
    report(std::to_string(outcome.failed) + " point(s) of the study in " + out + " failed: see their logs");
    return 1;
  }
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"est: Evolving Subnetwork Training for transformer language models"};
  app.require_subcommand(1);

  std::string config_path;
  std::vector<std::string> overrides;
  auto* train = app.add_subcommand("train", "Train a model as configured");
  train->add_option("--config", config_path, "YAML configuration")->required();
  train->add_option("--set", overrides, "Override a config key: key=value (repeatable)");
  std::string resume;
  train->add_option("--resume", resume,
                    "auto (the newest checkpoint that verifies, else start afresh) or a checkpoint file");

  int bench_steps = 5;
  auto* bench = app.add_subcommand("bench", "Time training steps and the GEMM backend; print JSON");
  bench->add_option("--config", config_path, "YAML configuration")->required();
  bench->add_option("--steps", bench_steps, "Timed steps (after 2 warm-up steps)")->check(CLI::PositiveNumber);
  bench->add_option("--set", overrides, "Override a config key: key=value (repeatable)");

  bool as_json = false;
  auto* flops = app.add_subcommand("flops", "Training FLOPs per EST stage and the saving, without training");
  flops->add_option("--config", config_path, "YAML configuration")->required();
  flops->add_flag("--json", as_json, "Print JSON");
  flops->add_option("--set", overrides, "Override a config key: key=value (repeatable)");

  int plan_ranks = 0;
  auto* plan = app.add_subcommand("plan", "The memory a training run needs per rank, worked out before it allocates");
  plan->add_option("--config", config_path, "YAML configuration")->required();
  plan->add_option("--set", overrides, "Override a config key: key=value (repeatable), e.g. parallel.tp=2");
  plan->add_option("--ranks", plan_ranks, "MPI ranks of the run (default: parallel.tp, one replica)");
  plan->add_flag("--json", as_json, "Print JSON");

  auto* data = app.add_subcommand("data", "Data preparation");
  data->require_subcommand(1);
  std::vector<std::string> text_paths;
  std::string out_dir, shard_stem;
  double val_fraction = 0.05;
  auto* prepare = data->add_subcommand("prepare", "Tokenize text files (bytes) into llm.c token shards");
  prepare->add_option("--text", text_paths, "Input text file, plain or gzip (repeatable: read in order as one text)")
      ->required();
  prepare->add_option("--name", shard_stem, "Shard name stem (default: the first text file's name up to its first dot)");
  prepare->add_option("--out", out_dir, "Output directory")->required();
  prepare->add_option("--val-fraction", val_fraction, "Fraction of the text held out for validation");

  auto* schedule = app.add_subcommand("schedule", "EST schedules");
  schedule->require_subcommand(1);
  est::ScheduleSolveRequest solve_request;
  auto* solve = schedule->add_subcommand("solve", "Write a three-stage EST schedule solved for a FLOPs saving on a config");
  solve->add_option("--config", solve_request.config_path, "YAML configuration")->required();
  solve->add_option("--saving", solve_request.saving, "Target training-FLOPs saving, in (0, 1)")->required();
  solve->add_option("--set", solve_request.overrides, "Override a config key: key=value (repeatable)");
  solve->add_option("--p-heads", solve_request.p_heads, "Head rate of stages 1 and 2 (default 0.5)");
  solve->add_option("--p-mlp", solve_request.p_mlp, "MLP-neuron rate of stages 1 and 2 (default 0.5)");
  solve->add_option("--p-layers", solve_request.p_layers, "Layer rate of stage 1 (default 0.5)");
  solve->add_option("--stage1", solve_request.stage1, "Where stage 1 ends, a fraction of the run (default 0.20)");
  solve->add_option("--out", solve_request.out, "Write the schedule to this file (atomically) instead of printing it");

  est::SampleRequest sample_request;
  auto* sample = app.add_subcommand("sample", "Continue a prompt with a model file (llm.c's GPT-2 or llama2.c's Llama)");
  sample->add_option("--model", sample_request.model, "model.bin (llm.c or llama2.c format)")->required();
  sample->add_option("--prompt", sample_request.prompt,
                     "Text for a byte-level model (vocabulary 256), else token ids separated by spaces")
      ->required();
  sample->add_option("--tokens", sample_request.tokens, "Tokens to generate (default 128)")
      ->check(CLI::NonNegativeNumber);
  sample->add_option("--temperature", sample_request.temperature, "Softmax temperature; 0: greedy (default 1)")
      ->check(CLI::NonNegativeNumber);
  sample->add_option("--seed", sample_request.seed, "Seed of the draws (default 1337)");
  sample->add_option("--tokenizer", sample_request.tokenizer, "llm.c tokenizer file (gpt2_tokenizer.bin) to decode with");
  sample->add_option("--logits", sample_request.logits,
                     "Write the prompt's logits, (positions, vocab_size) float32, to this .npy file");

  std::string inspect_path;
  bool verify = false;
  auto* inspect = app.add_subcommand("inspect", "Describe an est HDF5 file: a trace or a checkpoint");
  inspect->add_option("FILE", inspect_path, "trace.h5 or a checkpoint (.h5)")->required();
  inspect->add_flag("--verify", verify, "Check it (trace: rows and steps; checkpoint: checksums); exit 1 on problems");
  inspect->add_flag("--json", as_json, "Print JSON");

  est::ScalingRequest sim_request;
  std::string cluster_path, sim_nodes = "1", sim_mode = "strong", cluster_out, cluster_name = "calibrated";
  std::vector<std::string> calibration_traces;
  auto* simulate = app.add_subcommand(
      "simulate", "Predict EST and baseline step time, run time and energy on a cluster, or fit a cluster file to traces");
  simulate->add_option("--config", config_path, "YAML configuration");
  simulate->add_option("--set", overrides, "Override a config key: key=value (repeatable)");
  simulate->add_option("--cluster", cluster_path, "Cluster file (jobs/clusters/*.yaml)");
  simulate->add_option("--nodes", sim_nodes, "Node counts, e.g. 1,2,4 (default 1)");
  simulate->add_option("--mode", sim_mode, "strong (same global batch) or weak (same batch per rank)");
  simulate->add_option("--tp", sim_request.tp, "Tensor-parallel size (default: the config's parallel.tp)");
  simulate->add_option("--ranks-per-node", sim_request.ranks_per_node,
                       "MPI ranks per node (default: the cluster's node.ranks_per_node)");
  simulate->add_flag("--json", as_json, "Print JSON");
  simulate->add_option("--calibrate", calibration_traces, "Instead: fit a cluster file to these trace.h5 files")
      ->excludes("--config")
      ->excludes("--cluster");
  simulate->add_option("--out", cluster_out, "The cluster file --calibrate writes");
  simulate->add_option("--name", cluster_name, "Its name");

  auto* jobs = app.add_subcommand("jobs", "Slurm job scripts");
  jobs->require_subcommand(1);
  est::ScalingStudyRequest study;
  auto* scaling = jobs->add_subcommand("scaling", "Write a strong or weak scaling study: a batch script per node count");
  scaling->add_option("--config", study.config_path, "YAML configuration")->required();
  scaling->add_option("--set", study.overrides, "Override a config key: key=value (repeatable)");
  scaling->add_option("--nodes", study.nodes, "Node counts, e.g. 1,2,4,8")->required();
  scaling->add_option("--mode", study.mode, "strong (same global batch) or weak (same batch per rank)")->required();
  scaling->add_option("--tp", study.tp, "Tensor-parallel size (default: the config's parallel.tp)");
  scaling->add_option("--ranks-per-node", study.ranks_per_node, "MPI ranks per node");
  scaling->add_option("--launcher", study.launcher, "srun or mpirun");
  scaling->add_option("--time", study.time_limit, "Time limit of every job, HH:MM:SS");
  scaling->add_option("--out", study.out_dir, "Study directory (scripts, config.yaml, manifest.json)")->required();
  scaling->add_flag("--force", study.force, "Replace an earlier study in --out");
  scaling->add_option("--cluster", study.cluster_path, "Cluster file: record est simulate's prediction per point");

  std::string study_spec, study_out, study_time = "04:00:00", study_launcher = "srun";
  bool study_force = false, study_slurm = false;
  auto* study_cmd = app.add_subcommand(
      "study", "Run every variant of an EST study at every seed (resumable), here or as a Slurm job array");
  study_cmd->add_option("SPEC", study_spec, "Study file (YAML: config, seeds, baseline, variants)")->required();
  study_cmd->add_option("--out", study_out, "Study directory (config.yaml, manifest.json, a run per point)")->required();
  study_cmd->add_option("--set", overrides, "Override a config key for every point: key=value (repeatable)");
  study_cmd->add_flag("--force", study_force, "Replace a different study in --out");
  study_cmd->add_flag("--slurm", study_slurm, "Write DIR/study.sbatch, a job array of the points, instead of running them");
  study_cmd->add_option("--time", study_time, "--slurm: time limit of every array task, HH:MM:SS (default 04:00:00)");
  study_cmd->add_option("--launcher", study_launcher, "--slurm: srun or mpirun (default srun)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = world_rank() == 0 ? app.exit(e) : e.get_exit_code();
    return code == 0 ? 0 : kExitBadInput;
  }

  // Training and bench run Kokkos kernels; Kokkos starts once the config gives its thread count, and ends after
  // the last View (declared before the trainer, it is destroyed after it).
  std::optional<est::KokkosSession> kokkos;
  if (*train) {
    const est::StopRequest stop_on_signal;  // from here on, SIGUSR1/SIGTERM mean: checkpoint, then exit
    est::Config cfg;
    if (const int rc = agreed([&] { cfg = est::load_config(config_path, overrides); })) return rc;
    kokkos.emplace(est::resolve_threads(cfg.runtime.threads));
    std::unique_ptr<est::Trainer> trainer;
    if (const int rc = agreed([&] { trainer = std::make_unique<est::Trainer>(cfg, MPI_COMM_WORLD, resume); })) return rc;
    const int rc = or_abort([&] {
      const auto s = trainer->run();
      if (world_rank() != 0 || s.is_null()) return;
      std::printf("est: %lld tokens in %.1f s (%.0f tok/s), final train loss %.4f, val loss %s; summary in %s\n",
                  s["tokens"].get<long long>(), s["wall_seconds"].get<double>(), s["tokens_per_second"].get<double>(),
                  s["final_train_loss"].get<double>(),
                  s["final_val_loss"].is_null() ? "n/a" : s["final_val_loss"].dump().c_str(),
                  (trainer->output_dir() + "/summary.json").c_str());
    });
    return rc == 0 && trainer->stopped_by_signal() ? est::kExitResumable : rc;
  }
  if (*study_cmd) return run_study(study_spec, overrides, study_out, study_force, study_slurm, study_time,
                                   study_launcher);
  if (*bench) {
    est::Config cfg;
    if (const int rc = agreed([&] { cfg = est::load_config(config_path, overrides); })) return rc;
    kokkos.emplace(est::resolve_threads(cfg.runtime.threads));
    return or_abort([&] {
      const auto j = est::run_bench(cfg, bench_steps);
      if (world_rank() == 0) std::printf("%s\n", j.dump(2).c_str());
    });
  }
  if (*sample) {
    kokkos.emplace(est::resolve_threads(0));
    est::configure_runtime(est::RuntimeConfig{});
    return agreed([&] {
      if (world_rank() == 0) est::run_sample(sample_request, stdout);
    });
  }
  if (*inspect) {
    // One process reads the file (serial HDF5); under mpiexec the others only learn its status.
    int status = 0;
    if (const int rc = agreed([&] {
          if (world_rank() == 0) status = est::inspect_file(inspect_path, verify, as_json);
        }))
      return rc;
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return status;
  }
  return agreed([&] {
    if (*flops) {
      const auto report = est::flops_report(est::load_config(config_path, overrides));
      if (world_rank() == 0)
        std::printf("%s", as_json ? (report.dump(2) + "\n").c_str() : est::format_flops_report(report).c_str());
    } else if (*plan) {
      const est::Config cfg = est::load_config(config_path, overrides);
      const auto p = est::plan_memory(cfg, cfg.shape(), est::training_layout(cfg, plan_ranks));
      if (world_rank() == 0)
        std::printf("%s", as_json ? (est::to_json(p).dump(2) + "\n").c_str() : est::format_memory_plan(p).c_str());
    } else if (*scaling) {
      if (world_rank() != 0) return;
      const auto manifest = est::write_scaling_study(study, est::default_study_tools());
      std::printf("est: wrote a %s scaling study of %zu point(s) to %s; submit it with jobs/submit-study %s\n",
                  study.mode.c_str(), manifest["points"].size(), study.out_dir.c_str(), study.out_dir.c_str());
    } else if (*simulate && !calibration_traces.empty()) {
      if (cluster_out.empty()) throw est::InputError("", "--out", "--calibrate needs --out CLUSTER.yaml");
      if (world_rank() != 0) return;
      const auto cal = est::calibrate(calibration_traces, cluster_name);
      est::write_text_atomic(cluster_out, est::format_calibration(cal, calibration_traces));
      std::printf("est: wrote %s (GEMM %.4g FLOP/s, %.4g s per GEMM, %.4g B/s, alpha %.4g s, beta %.4g s/B)\n",
                  cluster_out.c_str(), cal.cluster.peak_flops, cal.cluster.gemm.launch_seconds,
                  cal.cluster.memory_bandwidth, cal.cluster.intra.alpha, cal.cluster.intra.beta);
    } else if (*simulate) {
      if (config_path.empty()) throw est::InputError("", "--config", "simulate needs --config (or --calibrate)");
      if (cluster_path.empty()) throw est::InputError("", "--cluster", "simulate needs --cluster CLUSTER.yaml");
      const est::Config cfg = est::load_config(config_path, overrides);
      const est::Cluster cluster = est::read_cluster(cluster_path);
      sim_request.nodes = est::parse_node_list(sim_nodes, "--nodes");
      sim_request.mode = est::parse_scaling_mode(sim_mode, "--mode");
      if (simulate->count("--ranks-per-node") == 0) sim_request.ranks_per_node = cluster.ranks_per_node;
      const auto sim = est::simulate(cfg, cluster, sim_request);
      if (world_rank() == 0)
        std::printf("%s", as_json ? (sim.dump(2) + "\n").c_str() : est::format_simulation(sim).c_str());
    } else if (*prepare) {
      if (world_rank() != 0) return;
      const auto r = est::prepare_text(text_paths, out_dir, val_fraction, shard_stem);
      std::printf("est: wrote %lld train tokens in %zu shard(s) and %lld val tokens to %s\n",
                  static_cast<long long>(r.train_tokens), r.train.size(), static_cast<long long>(r.val_tokens),
                  out_dir.c_str());
    } else if (*solve) {
      const auto solved = est::solve_schedule(solve_request);
      if (world_rank() != 0) return;
      if (solve_request.out.empty()) {
        std::printf("%s", est::format_solved_schedule(solved).c_str());
        return;
      }
      const double saving = est::write_solved_schedule(solved, solve_request.out);
      std::printf("est: wrote %s (stage 2 until %.3f): saving %.5f of the training FLOPs of %s\n",
                  solve_request.out.c_str(), solved.f2(), saving, solved.config.path.c_str());
    }
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // HDF5 starts before MPI and never shuts down: a file whose close failed (a full disk) stays broken inside it,
  // and closing it again at shutdown, as HDF5 would at exit or in MPI_Finalize, crashes. est closes every file it
  // writes itself. Its failures reach the user translated (io/io_error.hpp), not as its error stack.
  H5dont_atexit();
  H5open();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  const int rc = run(argc, argv);
  MPI_Finalize();
  return rc;
}
