// The config reader (config/config.cpp) on arbitrary bytes: the YAML file up to the first NUL byte, then each
// NUL-separated piece a --set override. A config it accepts must also read back from the text it records
// (Config::yaml_text, what traces and checkpoints keep and est reads again), to the same text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t end = input.find('\0');
  std::vector<std::string> overrides;
  for (size_t at = end; at < input.size();) {
    const size_t next = input.find('\0', at + 1);
    overrides.push_back(input.substr(at + 1, next - at - 1));
    at = next;
  }
  const std::string text = input.substr(0, end);
  const std::string path = est::fuzz::scratch_file("config.yaml", text.data(), text.size());
  std::optional<est::Config> config;
  est::fuzz::attempt([&] {
    config = est::load_config(path, overrides);
    config->init_seed();
  });
  if (!config) return 0;
  std::string again;
  try {
    again = est::parse_config(config->yaml_text, "recorded").yaml_text;
  } catch (const std::exception& e) {
    again = std::string("error: ") + e.what();
  }
  if (again != config->yaml_text) {
    std::fprintf(stderr, "the recorded config reads back differently:\n%s\n---\n%s\n", config->yaml_text.c_str(),
                 again.c_str());
    std::abort();
  }
  return 0;
}
