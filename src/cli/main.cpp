// est: the command line. Bad input of any kind ends with one "est: error: ..." line and exit status 2.
#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <cstdio>

#include "config/config.hpp"
#include "data/prepare.hpp"
#include "input_error.hpp"
#include "train/bench.hpp"
#include "train/flops_report.hpp"
#include "train/trainer.hpp"

namespace {

constexpr int kExitBadInput = 2;

int run(int argc, char** argv) {
  CLI::App app{"est: Evolving Subnetwork Training for transformer language models"};
  app.require_subcommand(1);

  std::string config_path;
  std::vector<std::string> overrides;
  auto* train = app.add_subcommand("train", "Train a model as configured");
  train->add_option("--config", config_path, "YAML configuration")->required();
  train->add_option("--set", overrides, "Override a config key: key=value (repeatable)");

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

  auto* data = app.add_subcommand("data", "Data preparation");
  data->require_subcommand(1);
  std::string text_path, out_dir;
  double val_fraction = 0.05;
  auto* prepare = data->add_subcommand("prepare", "Tokenize a text file (bytes) into llm.c token shards");
  prepare->add_option("--text", text_path, "Input text file")->required();
  prepare->add_option("--out", out_dir, "Output directory")->required();
  prepare->add_option("--val-fraction", val_fraction, "Fraction of the text held out for validation");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitBadInput;
  }

  if (*train) {
    est::Trainer trainer(est::load_config(config_path, overrides));
    const auto s = trainer.run();
    std::printf("est: %lld tokens in %.1f s (%.0f tok/s), final train loss %.4f, val loss %s; summary in %s\n",
                s["tokens"].get<long long>(), s["wall_seconds"].get<double>(), s["tokens_per_second"].get<double>(),
                s["final_train_loss"].get<double>(), s["final_val_loss"].is_null() ? "n/a" : s["final_val_loss"].dump().c_str(),
                (trainer.output_dir() + "/summary.json").c_str());
  } else if (*bench) {
    std::printf("%s\n", est::run_bench(est::load_config(config_path, overrides), bench_steps).dump(2).c_str());
  } else if (*flops) {
    const auto report = est::flops_report(est::load_config(config_path, overrides));
    std::printf("%s", as_json ? (report.dump(2) + "\n").c_str() : est::format_flops_report(report).c_str());
  } else if (*prepare) {
    const auto r = est::prepare_text(text_path, out_dir, val_fraction);
    std::printf("est: wrote %lld train tokens in %zu shard(s) and %lld val tokens to %s\n",
                static_cast<long long>(r.train_tokens), r.train.size(), static_cast<long long>(r.val_tokens),
                out_dir.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  try {
    return run(argc, argv);
  } catch (const est::InputError& e) {
    std::fprintf(stderr, "est: error: %s\n", e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "est: error: %s\n", e.what());
    return 1;
  }
}
