#pragma once
// The machine a simulation predicts for (jobs/clusters/*.yaml): per-rank compute rates, the links between ranks
// inside and across nodes, the cores its ranks share, the all-reduce algorithm, power. Every key is required
// except node.ranks_per_node and node.memory_per_rank, and an unknown one is an error, so a typo cannot silently
// fall back to a default.
#include <cmath>
#include <string>
#include <vector>

namespace est {

enum class AllreduceAlgorithm { ring, tree, automatic };

// alpha: seconds per message step (latency); beta: seconds per byte (inverse bandwidth).
struct Link {
  double alpha = 0, beta = 0;
};

// A GEMM of W FLOPs runs at peak_flops * efficiency * W / (W + half_rate_flops) after launch_seconds.
struct GemmRate {
  double efficiency = 1, half_rate_flops = 0, launch_seconds = 0;
};

struct Cluster {
  std::string path;  // the file it was read from ("" when built in memory)
  std::string name, description;
  std::vector<std::string> sources;
  int ranks_per_node = 1;
  // Per node, for the ranks' compute threads (GEMMs and elementwise kernels); infinite: the ranks compute on
  // accelerators, one each, and the host cores do not limit them.
  double cores = INFINITY;
  double peak_flops = 0;        // per rank
  GemmRate gemm;
  double memory_bandwidth = 0;  // bytes/s per rank, for the elementwise kernels; infinite: folded into the GEMMs
  double imbalance = 1;         // max/mean compute over ranks; multiplies compute time
  double power_watts = 0;       // per node
  double memory_per_rank = 0;   // bytes for a rank's kernel buffers (a GPU's memory); 0: not given
  Link intra, inter;
  AllreduceAlgorithm allreduce = AllreduceAlgorithm::ring;
  // Of the data-parallel gradient sum that the backward pass could hide (parallel.overlap), the fraction it does:
  // 1 where the sums have resources of their own (NCCL on a side stream), less where they share the compute's
  // cores. network.overlap_efficiency, optional (files from before the overlap: 1).
  double overlap_efficiency = 1;
};

// InputError naming the file and the key for a missing, unknown or out-of-range key.
Cluster read_cluster(const std::string& path);
// The file text read_cluster reads back; `header` (comment lines without '#') goes first.
std::string format_cluster(const Cluster& c, const std::string& header);
const char* to_string(AllreduceAlgorithm a);

}  // namespace est
