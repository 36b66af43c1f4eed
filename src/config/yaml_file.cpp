#include "config/yaml_file.hpp"

#include <fstream>
#include <sstream>

#include "input_error.hpp"

namespace est {

YAML::Node parse_yaml(const std::string& text, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(where + ":" + std::to_string(e.mark.line + 1), "yaml", e.msg);
  }
  return root.IsNull() ? YAML::Node(YAML::NodeType::Map) : root;
}

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "file", "cannot open " + what + " file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_yaml(text.str(), path);
}

std::string located(const std::string& path, const YAML::Node& node) {
  const int line = node.Mark().line;
  return line >= 0 ? path + ":" + std::to_string(line + 1) : path;
}

}  // namespace est
