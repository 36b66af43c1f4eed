// spack.yaml against the build: every package a CMakeLists.txt requires must be installable from the Spack
// environment, on GPU nodes and on CPU nodes, so a cluster build cannot fail at configure time for want of one.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

const std::string kSource = EST_SOURCE_DIR;

std::string read(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// What the build asks for, by the name CMake uses: find_package(X ... REQUIRED) and find_library(VAR name ...
// REQUIRED) in every CMakeLists.txt of the project.
std::set<std::string> cmake_requirements() {
  const std::regex package(R"(find_package\(\s*([A-Za-z0-9_-]+)[^)]*\bREQUIRED\b)");
  const std::regex library(R"(find_library\(\s*\w+\s+([A-Za-z0-9_-]+)[^)]*\bREQUIRED\b)");
  std::set<std::string> names;
  for (const char* file : {"CMakeLists.txt", "kernels/CMakeLists.txt", "src/CMakeLists.txt", "tests/CMakeLists.txt"}) {
    const std::string text = read(kSource + "/" + file);
    for (const std::regex* re : {&package, &library})
      for (std::sregex_iterator it(text.begin(), text.end(), *re), end; it != end; ++it) names.insert((*it)[1]);
  }
  return names;
}

// CMake's name for a dependency → the Spack package that provides it ("" when the compiler does).
const std::map<std::string, std::string> kSpackPackage = {
    {"Kokkos", "kokkos"},           {"MPI", "openmpi"},        {"HDF5", "hdf5"},       {"yaml-cpp", "yaml-cpp"},
    {"CLI11", "cli11"},             {"nlohmann_json", "nlohmann-json"},                {"OpenMP", ""},
    {"dnnl", "onednn"},             {"BLAS", "openblas"},      {"CUDAToolkit", "cuda"}, {"nccl", "nccl"},
    {"GTest", "googletest"},      {"ZLIB", "zlib"},
};
// Needed only where the CUDA backend is built.
const std::set<std::string> kGpuOnly = {"cuda", "nccl"};

// "hdf5@1.10: +mpi ~fortran" → "hdf5".
std::string package_name(const std::string& spec) { return spec.substr(0, spec.find_first_of("@+~% ")); }

struct SpackEnv {
  std::set<std::string> always;               // unconditional definitions
  std::map<std::string, std::set<std::string>> node;  // per node kind ("gpu", "cpu"): its conditional definitions
  std::map<std::string, std::string> specs_by_package;  // for variant checks
};

// "env.get('EST_NODE', 'gpu') == 'cpu'" → "cpu".
std::string node_kind(const std::string& when) {
  static const std::regex compared(R"(==\s*'(\w+)')");
  std::smatch m;
  return std::regex_search(when, m, compared) ? m[1].str() : "";
}

SpackEnv load_spack_env() {
  const YAML::Node root = YAML::LoadFile(kSource + "/spack.yaml");
  const YAML::Node env = root["spack"];
  EXPECT_TRUE(env.IsMap());
  SpackEnv out;
  std::set<std::string> used;
  for (const YAML::Node& s : env["specs"]) used.insert(s.as<std::string>());
  for (const YAML::Node& def : env["definitions"]) {
    std::string kind;
    if (def["when"]) {
      kind = node_kind(def["when"].as<std::string>());
      EXPECT_FALSE(kind.empty()) << "a definition's when: names no node kind";
    }
    for (const auto& entry : def) {
      const std::string name = entry.first.as<std::string>();
      if (name == "when") continue;
      EXPECT_TRUE(used.count("$" + name)) << "definition " << name << " is not in specs";
      for (const YAML::Node& spec : entry.second) {
        const std::string text = spec.as<std::string>();
        (kind.empty() ? out.always : out.node[kind]).insert(package_name(text));
        out.specs_by_package[package_name(text) + (kind.empty() ? "" : ":" + kind)] = text;
      }
    }
  }
  return out;
}

TEST(SpackEnv, ParsesAndOffersAGpuAndACpuNode) {
  const SpackEnv env = load_spack_env();
  ASSERT_TRUE(env.node.count("gpu"));
  ASSERT_TRUE(env.node.count("cpu"));
  EXPECT_NE(env.specs_by_package.at("kokkos:gpu").find("+cuda"), std::string::npos);
  EXPECT_NE(env.specs_by_package.at("kokkos:gpu").find("cuda_arch=90"), std::string::npos);
  EXPECT_NE(env.specs_by_package.at("kokkos:cpu").find("+openmp"), std::string::npos);
  EXPECT_NE(env.specs_by_package.at("hdf5").find("+mpi"), std::string::npos);
}

TEST(SpackEnv, NamesEveryPackageTheCMakeBuildRequires) {
  const SpackEnv env = load_spack_env();
  const std::set<std::string> required = cmake_requirements();
  ASSERT_TRUE(required.count("Kokkos") && required.count("HDF5") && required.count("GTest"));  // the scan works
  for (const std::string& cmake_name : required) {
    const auto it = kSpackPackage.find(cmake_name);
    ASSERT_NE(it, kSpackPackage.end()) << "CMake requires " << cmake_name
                                       << ": add its Spack spec to spack.yaml and its name to this test's table";
    const std::string& pkg = it->second;
    if (pkg.empty()) continue;
    for (const auto& [kind, packages] : env.node) {
      if (kGpuOnly.count(pkg) && kind != "gpu") continue;
      EXPECT_TRUE(env.always.count(pkg) || packages.count(pkg))
          << "spack.yaml: a " << kind << " node lacks " << pkg << " (CMake: " << cmake_name << ")";
    }
  }
}

}  // namespace
