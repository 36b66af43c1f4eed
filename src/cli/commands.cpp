#include "cli/commands.hpp"

namespace est::cli {

void add_config_options(CLI::App* command, std::string& config, std::vector<std::string>& overrides, bool required,
                        const std::string& set_help) {
  auto* option = command->add_option("--config", config, "YAML configuration");
  if (required) option->required();
  command->add_option("--set", overrides, set_help);
}

}  // namespace est::cli
