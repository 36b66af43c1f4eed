#pragma once
// The subcommands of est: each registers its options on the application and returns what it does once the
// command line is parsed (the exit status).
#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace est::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Training: train, bench, sample.
std::vector<Command> add_training_commands(CLI::App& app);
// Without training: flops, plan, schedule solve, data prepare, inspect.
std::vector<Command> add_tool_commands(CLI::App& app);
// Clusters and studies: simulate, jobs scaling, study.
std::vector<Command> add_job_commands(CLI::App& app);

// --config (required unless said otherwise) and the repeatable --set.
void add_config_options(CLI::App* command, std::string& config, std::vector<std::string>& overrides,
                        bool required = true, const std::string& set_help = "Override a config key: key=value (repeatable)");

}  // namespace est::cli
