#include <mpi.h>

#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_status.hpp"
#include "config/config.hpp"
#include "data/prepare.hpp"
#include "est/schedule_solver.hpp"
#include "io/inspect.hpp"
#include "train/flops_report.hpp"
#include "train/memory_plan.hpp"

namespace est::cli {
namespace {

// Text, or JSON with --json.
void print(bool as_json, const nlohmann::json& j, const std::string& text) {
  if (world_rank() == 0) std::printf("%s", as_json ? (j.dump(2) + "\n").c_str() : text.c_str());
}

Command flops_command(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  auto* c = app.add_subcommand("flops", "Training FLOPs per EST stage and the saving, without training");
  add_config_options(c, o->config, o->overrides);
  c->add_flag("--json", o->json, "Print JSON");
  return {c, [o] {
            return agreed([&] {
              const auto report = flops_report(load_config(o->config, o->overrides));
              print(o->json, report, format_flops_report(report));
            });
          }};
}

Command plan_command(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    int ranks = 0;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  auto* c = app.add_subcommand("plan", "The memory a training run needs per rank, worked out before it allocates");
  add_config_options(c, o->config, o->overrides, true,
                     "Override a config key: key=value (repeatable), e.g. parallel.tp=2");
  c->add_option("--ranks", o->ranks, "MPI ranks of the run (default: parallel.tp, one replica)");
  c->add_flag("--json", o->json, "Print JSON");
  return {c, [o] {
            return agreed([&] {
              const Config cfg = load_config(o->config, o->overrides);
              const auto p = plan_memory(cfg, cfg.shape(), training_layout(cfg, o->ranks));
              print(o->json, to_json(p), format_memory_plan(p));
            });
          }};
}

Command solve_command(CLI::App& app) {
  auto r = std::make_shared<ScheduleSolveRequest>();
  auto* schedule = app.add_subcommand("schedule", "EST schedules");
  schedule->require_subcommand(1);
  auto* c = schedule->add_subcommand("solve", "Write a three-stage EST schedule solved for a FLOPs saving on a config");
  add_config_options(c, r->config_path, r->overrides);
  c->add_option("--saving", r->saving, "Target training-FLOPs saving, in (0, 1)")->required();
  c->add_option("--p-heads", r->p_heads, "Head rate of stages 1 and 2 (default 0.5)");
  c->add_option("--p-mlp", r->p_mlp, "MLP-neuron rate of stages 1 and 2 (default 0.5)");
  c->add_option("--p-layers", r->p_layers, "Layer rate of stage 1 (default 0.5)");
  c->add_option("--stage1", r->stage1, "Where stage 1 ends, a fraction of the run (default 0.20)");
  c->add_option("--out", r->out, "Write the schedule to this file (atomically) instead of printing it");
  return {c, [r] {
            return agreed([&] {
              const auto solved = solve_schedule(*r);
              if (world_rank() != 0) return;
              if (r->out.empty()) {
                std::printf("%s", format_solved_schedule(solved).c_str());
                return;
              }
              const double saving = write_solved_schedule(solved, r->out);
              std::printf("est: wrote %s (stage 2 until %.3f): saving %.5f of the training FLOPs of %s\n",
                          r->out.c_str(), solved.f2(), saving, solved.config.path.c_str());
            });
          }};
}

Command prepare_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> texts;
    std::string out, stem;
    double val_fraction = 0.05;
  };
  auto o = std::make_shared<Options>();
  auto* data = app.add_subcommand("data", "Data preparation");
  data->require_subcommand(1);
  auto* c = data->add_subcommand("prepare", "Tokenize text files (bytes) into llm.c token shards");
  c->add_option("--text", o->texts, "Input text file, plain or gzip (repeatable: read in order as one text)")
      ->required();
  c->add_option("--name", o->stem, "Shard name stem (default: the first text file's name up to its first dot)");
  c->add_option("--out", o->out, "Output directory")->required();
  c->add_option("--val-fraction", o->val_fraction, "Fraction of the text held out for validation");
  return {c, [o] {
            return agreed([&] {
              if (world_rank() != 0) return;
              const auto r = prepare_text(o->texts, o->out, o->val_fraction, o->stem);
              std::printf("est: wrote %lld train tokens in %zu shard(s) and %lld val tokens to %s\n",
                          static_cast<long long>(r.train_tokens), r.train.size(),
                          static_cast<long long>(r.val_tokens), o->out.c_str());
            });
          }};
}

Command inspect_command(CLI::App& app) {
  struct Options {
    std::string path;
    bool verify = false, json = false;
  };
  auto o = std::make_shared<Options>();
  auto* c = app.add_subcommand("inspect", "Describe an est HDF5 file: a trace or a checkpoint");
  c->add_option("FILE", o->path, "trace.h5 or a checkpoint (.h5)")->required();
  c->add_flag("--verify", o->verify, "Check it (trace: rows and steps; checkpoint: checksums); exit 1 on problems");
  c->add_flag("--json", o->json, "Print JSON");
  return {c, [o] {
            // One process reads the file (serial HDF5); under mpiexec the others only learn its status.
            int status = 0;
            if (const int rc = agreed([&] {
                  if (world_rank() == 0) status = inspect_file(o->path, o->verify, o->json);
                }))
              return rc;
            MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
            return status;
          }};
}

}  // namespace

std::vector<Command> add_tool_commands(CLI::App& app) {
  return {flops_command(app), plan_command(app), solve_command(app), prepare_command(app), inspect_command(app)};
}

}  // namespace est::cli
