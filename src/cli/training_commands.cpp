#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_status.hpp"
#include "config/config.hpp"
#include "train/bench.hpp"
#include "train/runtime.hpp"
#include "train/sample.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"

// Training and bench run Kokkos kernels; Kokkos starts once the config gives its thread count, and ends after
// the last View (declared before the trainer, it is destroyed after it).
namespace est::cli {
namespace {

struct ConfigOptions {
  std::string config;
  std::vector<std::string> overrides;
};

void print_summary(const nlohmann::json& s, const std::string& dir) {
  std::printf("est: %lld tokens in %.1f s (%.0f tok/s), final train loss %.4f, val loss %s; summary in %s\n",
              s["tokens"].get<long long>(), s["wall_seconds"].get<double>(), s["tokens_per_second"].get<double>(),
              s["final_train_loss"].get<double>(),
              s["final_val_loss"].is_null() ? "n/a" : s["final_val_loss"].dump().c_str(),
              (dir + "/summary.json").c_str());
}

Command train_command(CLI::App& app) {
  struct Options : ConfigOptions {
    std::string resume;
  };
  auto o = std::make_shared<Options>();
  auto* c = app.add_subcommand("train", "Train a model as configured");
  add_config_options(c, o->config, o->overrides);
  c->add_option("--resume", o->resume,
                "auto (the newest checkpoint that verifies, else start afresh) or a checkpoint file");
  return {c, [o] {
            const StopRequest stop_on_signal;  // from here on, SIGUSR1/SIGTERM mean: checkpoint, then exit
            Config cfg;
            if (const int rc = agreed([&] { cfg = load_config(o->config, o->overrides); })) return rc;
            const KokkosSession kokkos(resolve_threads(cfg.runtime.threads));
            std::unique_ptr<Trainer> trainer;
            if (const int rc = agreed([&] { trainer = std::make_unique<Trainer>(cfg, MPI_COMM_WORLD, o->resume); }))
              return rc;
            const int rc = or_abort([&] {
              const auto s = trainer->run();
              if (world_rank() == 0 && !s.is_null()) print_summary(s, trainer->output_dir());
            });
            return rc == 0 && trainer->stopped_by_signal() ? kExitResumable : rc;
          }};
}

Command bench_command(CLI::App& app) {
  struct Options : ConfigOptions {
    int steps = 5;
  };
  auto o = std::make_shared<Options>();
  auto* c = app.add_subcommand("bench", "Time training steps and the GEMM backend; print JSON");
  add_config_options(c, o->config, o->overrides);
  c->add_option("--steps", o->steps, "Timed steps (after 2 warm-up steps)")->check(CLI::PositiveNumber);
  return {c, [o] {
            Config cfg;
            if (const int rc = agreed([&] { cfg = load_config(o->config, o->overrides); })) return rc;
            const KokkosSession kokkos(resolve_threads(cfg.runtime.threads));
            return or_abort([&] {
              const auto j = run_bench(cfg, o->steps);
              if (world_rank() == 0) std::printf("%s\n", j.dump(2).c_str());
            });
          }};
}

Command sample_command(CLI::App& app) {
  auto r = std::make_shared<SampleRequest>();
  auto* c = app.add_subcommand("sample", "Continue a prompt with a model file (llm.c's GPT-2 or llama2.c's Llama)");
  c->add_option("--model", r->model, "model.bin (llm.c or llama2.c format)")->required();
  c->add_option("--prompt", r->prompt, "Text for a byte-level model (vocabulary 256), else token ids separated by spaces")
      ->required();
  c->add_option("--tokens", r->tokens, "Tokens to generate (default 128)")->check(CLI::NonNegativeNumber);
  c->add_option("--temperature", r->temperature, "Softmax temperature; 0: greedy (default 1)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--seed", r->seed, "Seed of the draws (default 1337)");
  c->add_option("--tokenizer", r->tokenizer, "llm.c tokenizer file (gpt2_tokenizer.bin) to decode with");
  c->add_option("--logits", r->logits, "Write the prompt's logits, (positions, vocab_size) float32, to this .npy file");
  return {c, [r] {
            const KokkosSession kokkos(resolve_threads(0));
            configure_runtime(Config{});
            return agreed([&] {
              if (world_rank() == 0) run_sample(*r, stdout);
            });
          }};
}

}  // namespace

std::vector<Command> add_training_commands(CLI::App& app) {
  return {train_command(app), bench_command(app), sample_command(app)};
}

}  // namespace est::cli
