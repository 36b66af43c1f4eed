#pragma once
// The analytic cost of one training step on one rank: the GEMMs it runs (the shapes of est/flops.cpp's count,
// so the FLOPs agree with `est flops`), the bytes its elementwise kernels and AdamW move, and the tensor- and
// data-parallel all-reduces it joins; and their seconds on a Cluster. The calibration fits the same terms.
#include <vector>

#include "model/shape.hpp"
#include "sim/cluster.hpp"

namespace est {

// `calls` GEMMs of `flops` each.
struct GemmWork {
  double flops = 0, calls = 0;
};

// `calls` all-reduces over a group of `group` ranks moving `bytes` in total; inter_node: the group spans nodes.
struct CollectiveWork {
  int group = 1;
  bool inter_node = false;
  double calls = 0, bytes = 0;
};

// The compact gradient of a rank's share of the subnetwork, in parameters, in the order the backward pass completes
// it (model/active_layout.hpp): the LM-head side (final norm, an untied LM head) after the LM head's backward,
// each active layer's after the layer's, the embeddings at the end.
struct GradientParts {
  double head = 0, per_layer = 0, layers = 0, tail = 0;
  double total() const { return head + layers * per_layer + tail; }
};

// The data-parallel gradient sum (parallel.bucket_mb, parallel.overlap): buckets of bucket_bytes (0: one),
// started as the backward pass completes them, or all after it.
struct ReductionPlan {
  double bucket_bytes = 100.0 * (1 << 20);
  bool overlap = true;
};

struct StepWork {
  std::vector<GemmWork> gemms;  // the LM head's last
  double elementwise_bytes = 0;
  double optimizer_bytes = 0;   // AdamW's part of elementwise_bytes, after the backward pass
  CollectiveWork tp, dp;        // dp: the gradient's buckets and the loss
  GradientParts gradient;
  ReductionPlan reduction;
  int ranks_on_node = 1, threads = 1;  // the ranks sharing this rank's node, each one's compute threads

  double gemm_flops() const;
  double gemm_calls() const;
  const GemmWork& lm_head() const { return gemms.back(); }
  // The gradient's buckets, in bytes, in the order they are summed.
  std::vector<double> bucket_bytes() const;
};

// One rank's share of a step: `sequences` of T tokens through `active_layers` layers (a mean over a stage may be
// fractional) with this rank's `heads` and `neurons` in each. tp/dp and the placement flags describe its groups;
// ranks_on_node and threads (runtime.threads, <= 0: one per core) the compute threads sharing its node's cores.
struct RankStep {
  double sequences = 1, active_layers = 0, heads = 0, neurons = 0;
  int tp = 1, dp = 1;
  bool tp_inter_node = false, dp_inter_node = false;
  int ranks_on_node = 1, threads = 1;
  ReductionPlan reduction;
};

StepWork step_work(const ModelShape& s, int T, const RankStep& r);

// launch + W / (peak * efficiency * W / (W + half_rate)) = launch + (W + half_rate) / (peak * efficiency), per call.
double gemm_seconds(const Cluster& c, const GemmWork& g);
// Alpha-beta all-reduce: ring 2(p-1)·alpha per call + 2(p-1)/p·bytes·beta; tree 2·ceil(log2 p)·(alpha per call +
// bytes·beta); automatic: the faster of the two.
double allreduce_seconds(AllreduceAlgorithm algorithm, const Link& link, int p, double calls, double bytes);
double collective_seconds(const Cluster& c, const CollectiveWork& w);

// The node's compute threads (ranks_on_node x threads, threads <= 0 meaning one per core) over its cores, at
// least 1: ranks that share cores compute that much slower. 1 where the cores are infinite (accelerator ranks).
double oversubscription(const Cluster& c, int ranks_on_node, int threads);

struct StepCost {
  double compute_seconds = 0, tp_comm_seconds = 0;
  // The data-parallel gradient sum's own time, and the part of it the backward pass does not hide.
  double dp_reduce_seconds = 0, dp_exposed_seconds = 0;
  double step_seconds() const { return compute_seconds + tp_comm_seconds + dp_exposed_seconds; }
};

// Compute (GEMMs and elementwise traffic, times the oversubscription of the node's cores and the cluster's
// imbalance where the rank has partners) and communication as the trainer runs them: the tensor-parallel
// all-reduces inside the passes, the gradient sum's buckets beside the backward pass (exposed_seconds). The
// all-reduces are not slowed by oversubscription: jobs/validate-simulator's 4-rank run on 2 cores measures the
// step that the compute factor predicts, its ranks' waits for descheduled partners landing in comm_seconds.
StepCost step_cost(const Cluster& c, const StepWork& w);

// The backward pass of a step: its seconds, and how far into it the LM head's backward ends; the slowest rank's.
struct BackwardPass {
  double seconds = 0, head_seconds = 0;
};
BackwardPass backward_pass(const Cluster& c, const StepWork& w);
// Each bucket's all-reduce over the data-parallel group, in order.
std::vector<double> bucket_seconds(const Cluster& c, const StepWork& w);

// The part of the gradient sum that runs past the backward pass: bucket k starts once the pass has completed it
// (`head` seconds into the pass for the LM-head side, then one layer every (backward - head) / layers seconds, the
// embeddings at its end) and once bucket k-1 is done, and takes `bucket_seconds[k]`. Of the time that this
// timeline hides, only the cluster's overlap_efficiency is hidden. Without overlap, all of it is exposed.
double exposed_seconds(const StepWork& w, const std::vector<double>& bucket_seconds, double backward, double head,
                       double overlap_efficiency);

}  // namespace est
