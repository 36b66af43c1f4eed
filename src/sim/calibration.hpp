#pragma once
// `est simulate --calibrate`: the machine parameters of a cluster file fitted to measured training traces.
// Compute: per (trace, stage), the median of the ranks' mean compute seconds per step against the cost model's
// GEMM FLOPs, GEMM calls and elementwise bytes of that step gives 1/(peak·efficiency), the fixed cost per GEMM
// and 1/bandwidth. Communication: the median seconds in collectives (the gradient sum whole, hidden or not)
// against the all-reduce calls and bytes (ring coefficients) of the tensor- and data-parallel groups gives alpha
// and beta. Both are least squares on the relative error with non-negative coefficients. Overlap: of the gradient
// sum that the cost model's timeline would hide in overlapped data-parallel runs, the median fraction hidden. The traces must come from this machine (node.cores is its
// hardware concurrency) in runs whose ranks x runtime.threads fit its cores.
#include <set>
#include <string>
#include <vector>

#include "sim/cluster.hpp"

namespace est {

struct Calibration {
  Cluster cluster;
  int compute_points = 0, comm_points = 0, overlap_points = 0;  // (trace, stage) medians fitted
  double compute_rms_error = 0, comm_rms_error = 0;  // relative, over those points
  std::set<int> threads;  // the traces' runtime.threads: the fitted rates are a rank's at those
};

// InputError for a missing trace, a file that is not a trace, or one without a dataset or attribute it needs
// (naming the file and the dataset), one whose run oversubscribed the cores, and for traces that cannot
// determine the parameters.
Calibration calibrate(const std::vector<std::string>& traces, const std::string& name);
// The cluster file, its comments saying how it was made.
std::string format_calibration(const Calibration& cal, const std::vector<std::string>& traces);

}  // namespace est
