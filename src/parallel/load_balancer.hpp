#pragma once
// Stage-aware load balancing for TP x DP training: the policy alone, without MPI. The caller gathers every
// rank's timings each step (one allgather of a few doubles) and feeds the same vector to the same balancer on
// every rank, so all ranks reach the same plan without further communication. What a plan decides:
//  - the share of the global batch each DP replica trains (in proportion to its measured throughput, so that
//    heterogeneous nodes finish together); the global batch, and with it the mathematics of the step, stays
//    the same, only which rank computes which sequences moves;
//  - the order in which TP ranks take the extra heads/neurons when an active count does not divide evenly by
//    the TP size (fastest first).
// It re-plans at every EST stage transition, and when the measured imbalance stays above a threshold for
// `patience` consecutive steps.
#include <cstdint>
#include <deque>
#include <vector>

namespace est {

// Seconds of one step on one rank. Only `compute` drives the plan: `comm` and `wait` are carried for the
// trace (wait is the symptom of imbalance, not its cause, and the gradient all-reduce does not depend on the
// batch share).
struct RankTiming {
  double compute = 0, comm = 0, wait = 0;
  // Optional: the work the rank did in `compute` (e.g. its FLOPs, or its active heads + neurons). When every
  // rank reports it (> 0), TP ranks are ordered by compute per unit of work; otherwise by raw compute, which
  // also counts the extra heads a rank was given and can make the order flip at every re-plan.
  double work = 0;
};

struct BalancerConfig {
  double threshold = 1.05;  // re-plan when max/mean compute over ranks stays above this ...
  int patience = 5;         // ... for this many consecutive steps (K); also the length of the measuring window
  int64_t max_share = 0;    // most sequences one DP replica may take per step (memory); 0: no cap
};

class LoadBalancer {
 public:
  // dp x tp ranks, world rank = dp_rank * tp + tp_rank; global_batch sequences per step split over the DP
  // ranks. Throws std::invalid_argument for dp < 1, tp < 1, global_batch < 1, patience < 1, threshold < 1, or a
  // cap the global batch cannot fit under (max_share * dp < global_batch): dropping sequences would change the
  // mathematics and exceeding the cap would run out of memory, so such a configuration is refused up front.
  LoadBalancer(int dp, int tp, int64_t global_batch, const BalancerConfig& cfg = {});

  // One step's timings of all ranks (world order, dp * tp entries) and whether the EST stage changes at this
  // step (the step just measured and the next one run different stages; either side of the boundary works, the
  // re-plan uses the window including this step). Returns true when it re-planned: the new shares and
  // priorities take effect from the next step. A step whose computes are all zero counts as not measured;
  // a negative or non-finite compute or work throws std::invalid_argument.
  bool observe(const std::vector<RankTiming>& timings, bool stage_changed);

  // Per DP rank; the sum is global_batch; each is >= 1 while global_batch >= dp, and <= max_share when capped.
  // Equal (+-1, the first ranks taking the remainder) until the first re-plan.
  const std::vector<int64_t>& batch_shares() const { return shares_; }
  // Where DP rank's slice of the global batch starts (prefix sum of the shares); first_sequence(dp) is the
  // global batch.
  int64_t first_sequence(int dp_rank) const;
  // The TP ranks, fastest first: who takes the extra heads/neurons when a count does not divide evenly.
  // Initially 0..tp-1.
  const std::vector<int>& tp_priority() const { return priority_; }
  // max/mean compute over all ranks at the last measured step (1 when all are equal or nothing was measured).
  double imbalance() const { return imbalance_; }
  int replans() const { return replans_; }
  // Throughput estimate of each DP replica (sequences per second) as of the last re-plan; 0: not measured.
  const std::vector<double>& throughput() const { return throughput_; }

  // Everything needed to resume the same plan (checkpoints): shares, priorities, the over-threshold counter,
  // the throughput estimates and the measuring window. restore() takes the state of a balancer with the same
  // dp, tp and global batch (std::invalid_argument otherwise); shares that break this balancer's cap are
  // re-planned from the restored estimates at once.
  std::vector<double> state() const;
  void restore(const std::vector<double>& state);

 private:
  bool replan();
  std::vector<int64_t> plan_shares(const std::vector<double>& weights) const;

  int dp_, tp_;
  int64_t global_batch_;
  BalancerConfig cfg_;
  int64_t lo_, hi_;  // bounds of one share: 1 (0 when global_batch < dp) and the cap (or the global batch)
  std::vector<int64_t> shares_, prefix_;
  std::vector<int> priority_;
  std::vector<double> throughput_;
  double imbalance_ = 1;
  int over_ = 0;  // consecutive measured steps above the threshold
  int replans_ = 0;
  // The measured steps since the last re-plan, the last `patience` of them. One sample: the share of each
  // replica (dp), its step time (dp), and per TP rank the compute and the work summed over replicas (tp + tp).
  std::deque<std::vector<double>> window_;
};

}  // namespace est
