#include "jobs/scaling_plan.hpp"

#include <sstream>

#include "input_error.hpp"

namespace est {

ScalingMode parse_scaling_mode(const std::string& text, const std::string& where) {
  if (text == "strong") return ScalingMode::strong;
  if (text == "weak") return ScalingMode::weak;
  throw InputError("", where, "'" + text + "' is not a scaling mode (strong or weak)");
}

const char* to_string(ScalingMode mode) { return mode == ScalingMode::strong ? "strong" : "weak"; }

std::vector<int> parse_node_list(const std::string& text, const std::string& where) {
  std::vector<int> nodes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || n < 1)
      throw InputError("", where, "'" + item + "' is not a positive node count (expected a list such as 1,2,4,8)");
    if (!nodes.empty() && n <= nodes.back())
      throw InputError("", where, "node counts must increase: " + text);
    nodes.push_back(n);
  }
  if (nodes.empty()) throw InputError("", where, "no node counts given");
  return nodes;
}

std::vector<ScalingPoint> plan_scaling(const Config& cfg, const ScalingRequest& request) {
  const int tp = request.tp > 0 ? request.tp : cfg.parallel.tp;
  if (request.ranks_per_node < 1) throw InputError("", "--ranks-per-node", "must be at least 1");
  if (request.nodes.empty()) throw InputError("", "--nodes", "no node counts given");
  if (cfg.model.n_head % tp != 0)
    throw InputError(cfg.path, "parallel.tp", "tensor-parallel size " + std::to_string(tp) + " does not divide the " +
                                                  std::to_string(cfg.model.n_head) + " heads");
  std::vector<ScalingPoint> points;
  double weak_share = 0;
  for (const int nodes : request.nodes) {
    ScalingPoint p;
    p.nodes = nodes;
    p.ranks = nodes * request.ranks_per_node;
    p.tp = tp;
    if (p.ranks % tp != 0)
      throw InputError(cfg.path, "parallel.tp", "tensor-parallel size " + std::to_string(tp) + " does not divide the " +
                                                    std::to_string(p.ranks) + " ranks of " + std::to_string(nodes) +
                                                    " node(s)");
    p.dp = p.ranks / tp;
    if (request.mode == ScalingMode::strong) {
      p.global_batch = cfg.train.batch_size;
    } else {
      if (points.empty()) {
        if (cfg.train.batch_size % p.dp != 0)
          throw InputError(cfg.path, "train.batch_size",
                           "weak scaling keeps the batch of one data-parallel rank, but " +
                               std::to_string(cfg.train.batch_size) + " sequences do not split evenly over the " +
                               std::to_string(p.dp) + " data-parallel ranks of the smallest point");
        weak_share = static_cast<double>(cfg.train.batch_size / p.dp);
      }
      p.global_batch = static_cast<int>(weak_share) * p.dp;
    }
    if (p.global_batch < p.dp)
      throw InputError(cfg.path, "train.batch_size",
                       "the global batch of " + std::to_string(p.global_batch) + " sequences is smaller than the " +
                           std::to_string(p.dp) + " data-parallel ranks of " + std::to_string(nodes) + " node(s)");
    p.per_rank_batch = static_cast<double>(p.global_batch) / p.dp;
    points.push_back(p);
  }
  return points;
}

}  // namespace est
