#pragma once
// Reading the project's YAML files (configs, schedules): a missing file or a syntax error is one InputError
// naming the file (and line) like every other bad input.
#include <yaml-cpp/yaml.h>

#include <string>

namespace est {

// The document in PATH; an empty file reads as an empty mapping. `what` names the file's kind in errors.
YAML::Node load_yaml_file(const std::string& path, const std::string& what);
// The same for a document held as text (a file's recorded config), named `where` in errors.
YAML::Node parse_yaml(const std::string& text, const std::string& where);
// "PATH:LINE" of a node, for errors about it.
std::string located(const std::string& path, const YAML::Node& node);

}  // namespace est
