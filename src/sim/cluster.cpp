#include "sim/cluster.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "config/yaml_file.hpp"
#include "input_error.hpp"

namespace est {
namespace {

// One mapping of the file, holding only the keys it may have; hands them out.
class Section {
 public:
  Section(const YAML::Node& node, std::string path, std::string prefix, const std::set<std::string>& keys)
      : node_(node), path_(std::move(path)), prefix_(std::move(prefix)) {
    if (!node_.IsMap()) throw InputError(located(path_, node_), prefix_.empty() ? "yaml" : prefix_, "expected a mapping");
    for (const auto& kv : node_)
      if (!keys.count(kv.first.Scalar()))
        throw InputError(located(path_, kv.first), full(kv.first.Scalar()), "unknown key");
  }

  bool has(const std::string& key) const { return bool(node_[key]); }

  YAML::Node get(const std::string& key) const {
    const YAML::Node n = node_[key];
    if (!n) throw InputError(path_, full(key), "missing");
    return n;
  }

  Section section(const std::string& key, const std::set<std::string>& keys) const {
    return Section(get(key), path_, full(key), keys);
  }

  std::string text(const std::string& key) const { return scalar<std::string>(key, "a string"); }

  double positive(const std::string& key) const {
    const double x = scalar<double>(key, "a number");
    if (!(x > 0) || !std::isfinite(x)) fail(key, "must be a positive number");
    return x;
  }

  // A positive number or .inf (the cost it divides is taken as zero).
  double positive_or_infinite(const std::string& key) const {
    const double x = scalar<double>(key, "a number");
    if (!(x > 0)) fail(key, "must be a positive number or .inf");
    return x;
  }

  double non_negative(const std::string& key) const {
    const double x = scalar<double>(key, "a number");
    if (!(x >= 0) || !std::isfinite(x)) fail(key, "must be >= 0");
    return x;
  }

  std::vector<std::string> strings(const std::string& key) const {
    const YAML::Node n = get(key);
    if (!n.IsSequence()) fail(key, "expected a list of strings");
    std::vector<std::string> out;
    for (const auto& item : n) {
      if (!item.IsScalar()) fail(key, "expected a list of strings");
      out.push_back(item.Scalar());
    }
    return out;
  }

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw InputError(located(path_, node_[key]), full(key), message);
  }

  template <class T>
  T scalar(const std::string& key, const char* what) const {
    const YAML::Node n = get(key);
    if (!n.IsScalar()) fail(key, std::string("expected ") + what);
    try {
      return n.as<T>();
    } catch (const YAML::BadConversion&) {
      fail(key, std::string("expected ") + what + ", got '" + n.Scalar() + "'");
    }
  }

 private:
  std::string full(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

  YAML::Node node_;
  std::string path_, prefix_;
};

Link read_link(const Section& network, const std::string& key) {
  const Section s = network.section(key, {"alpha", "beta"});
  return {s.non_negative("alpha"), s.non_negative("beta")};
}

AllreduceAlgorithm read_algorithm(const Section& s) {
  const std::string name = s.text("allreduce");
  if (name == "ring") return AllreduceAlgorithm::ring;
  if (name == "tree") return AllreduceAlgorithm::tree;
  if (name == "auto") return AllreduceAlgorithm::automatic;
  s.fail("allreduce", "expected ring, tree or auto, got '" + name + "'");
}

std::string number(double x) {
  if (std::isinf(x)) return ".inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

// A YAML double-quoted string.
std::string quoted(const std::string& s) {
  YAML::Emitter out;
  out << YAML::DoubleQuoted << s;
  return out.c_str();
}

}  // namespace

const char* to_string(AllreduceAlgorithm a) {
  switch (a) {
    case AllreduceAlgorithm::ring: return "ring";
    case AllreduceAlgorithm::tree: return "tree";
    case AllreduceAlgorithm::automatic: return "auto";
  }
  return "ring";
}

Cluster read_cluster(const std::string& path) {
  const Section root(load_yaml_file(path, "cluster"), path, "",
                     {"name", "description", "sources", "node", "network", "allreduce"});
  Cluster c;
  c.path = path;
  c.name = root.text("name");
  c.description = root.text("description");
  c.sources = root.strings("sources");
  const Section node = root.section(
      "node", {"ranks_per_node", "cores", "peak_flops", "gemm", "memory_bandwidth", "imbalance", "power_watts",
               "memory_per_rank"});
  if (node.has("ranks_per_node")) {
    c.ranks_per_node = node.scalar<int>("ranks_per_node", "an integer");
    if (c.ranks_per_node < 1) node.fail("ranks_per_node", "must be >= 1");
  }
  c.cores = node.positive_or_infinite("cores");
  c.peak_flops = node.positive("peak_flops");
  const Section gemm = node.section("gemm", {"efficiency", "half_rate_flops", "launch_seconds"});
  c.gemm.efficiency = gemm.positive("efficiency");
  if (c.gemm.efficiency > 1) gemm.fail("efficiency", "must be in (0, 1]");
  c.gemm.half_rate_flops = gemm.non_negative("half_rate_flops");
  c.gemm.launch_seconds = gemm.non_negative("launch_seconds");
  c.memory_bandwidth = node.positive_or_infinite("memory_bandwidth");
  c.imbalance = node.positive("imbalance");
  if (c.imbalance < 1) node.fail("imbalance", "must be >= 1 (max over mean compute)");
  c.power_watts = node.non_negative("power_watts");
  if (node.has("memory_per_rank")) c.memory_per_rank = node.positive("memory_per_rank");
  const Section network = root.section("network", {"intra", "inter", "overlap_efficiency"});
  c.intra = read_link(network, "intra");
  c.inter = read_link(network, "inter");
  if (network.has("overlap_efficiency")) {
    c.overlap_efficiency = network.non_negative("overlap_efficiency");
    if (c.overlap_efficiency > 1) network.fail("overlap_efficiency", "must be in [0, 1]");
  }
  c.allreduce = read_algorithm(root);
  return c;
}

std::string format_cluster(const Cluster& c, const std::string& header) {
  std::ostringstream out;
  std::istringstream lines(header);
  for (std::string line; std::getline(lines, line);) out << (line.empty() ? "#" : "# " + line) << "\n";
  out << "name: " << quoted(c.name) << "\n";
  out << "description: " << quoted(c.description) << "\n";
  out << "sources:" << (c.sources.empty() ? " []\n" : "\n");
  for (const auto& s : c.sources) out << "  - " << quoted(s) << "\n";
  out << "node:\n"
      << "  ranks_per_node: " << c.ranks_per_node << "\n"
      << "  cores: " << number(c.cores) << "\n"
      << "  peak_flops: " << number(c.peak_flops) << "\n"
      << "  gemm:\n"
      << "    efficiency: " << number(c.gemm.efficiency) << "\n"
      << "    half_rate_flops: " << number(c.gemm.half_rate_flops) << "\n"
      << "    launch_seconds: " << number(c.gemm.launch_seconds) << "\n"
      << "  memory_bandwidth: " << number(c.memory_bandwidth) << "\n"
      << "  imbalance: " << number(c.imbalance) << "\n"
      << "  power_watts: " << number(c.power_watts) << "\n";
  if (c.memory_per_rank > 0) out << "  memory_per_rank: " << number(c.memory_per_rank) << "\n";
  out << "network:\n"
      << "  intra: {alpha: " << number(c.intra.alpha) << ", beta: " << number(c.intra.beta) << "}\n"
      << "  inter: {alpha: " << number(c.inter.alpha) << ", beta: " << number(c.inter.beta) << "}\n"
      << "  overlap_efficiency: " << number(c.overlap_efficiency) << "\n"
      << "allreduce: " << to_string(c.allreduce) << "\n";
  return out.str();
}

}  // namespace est
