#include "config/yaml_file.hpp"

#include <fstream>

#include "input_error.hpp"

namespace est {

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "file", "cannot open " + what + " file");
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    throw InputError(path + ":" + std::to_string(e.mark.line + 1), "yaml", e.msg);
  }
  return root.IsNull() ? YAML::Node(YAML::NodeType::Map) : root;
}

std::string located(const std::string& path, const YAML::Node& node) {
  const int line = node.Mark().line;
  return line >= 0 ? path + ":" + std::to_string(line + 1) : path;
}

}  // namespace est
