#pragma once
// The training loop: data → subnetwork of the step → model → loss → gradients → clipping → AdamW, with periodic
// validation of the full model, a progress line and <output.dir>/summary.json at the end.
//
// Every MPI rank runs it. The process grid splits the ranks into tensor-parallel groups (parallel.tp) and
// data-parallel replicas; train.batch_size is the global batch, shared out over the replicas by the load
// balancer, and every rank draws the same subnetwork and takes its tensor-parallel part of it.
#include <exception>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/dataloader.hpp"
#include "est/sampler.hpp"
#include "est/schedule.hpp"
#include "io/run_lock.hpp"
#include "io/trace_writer.hpp"
#include "model/architectures.hpp"
#include "optim/lr_schedule.hpp"
#include "optim/optimizer.hpp"
#include "parallel/load_balancer.hpp"
#include "parallel/gradient_reducer.hpp"
#include "parallel/process_grid.hpp"
#include "train/memory_plan.hpp"

namespace est {

class Progress;

class Trainer {
 public:
  // Checks every input (data shards, model file, EST schedule, the checkpoint to resume from) and builds the
  // model; writes nothing. `world` is the group of ranks to train on. `resume`: "" (start afresh), "auto" (the
  // newest checkpoint in <output.dir>/checkpoints whose checksums verify, falling back to older ones with a
  // warning; none: start afresh; one at train.steps: the run is complete) or a checkpoint file.
  explicit Trainer(const Config& cfg, MPI_Comm world = MPI_COMM_WORLD, const std::string& resume = "");
  // Trains (until train.steps, train.stop_after steps of this invocation, or a StopRequest signal on any rank),
  // writes the output directory and returns the summary (empty when stopping early, after a checkpoint).
  nlohmann::json run();
  // The signal that stopped the last run early (0: none).
  int stopped_by_signal() const { return stop_signal_; }
  int64_t start_step() const { return start_step_; }
  // Resumed from the run's last step: run() has nothing to do.
  bool complete() const { return start_step_ >= cfg_.train.steps; }
  const std::string& output_dir() const { return cfg_.output.dir; }
  // Per step of the last run: the global-batch loss and the max/mean compute over ranks.
  const std::vector<float>& losses() const { return losses_; }
  const std::vector<double>& imbalances() const { return imbalances_; }
  const Model& model() const { return *model_; }
  const LoadBalancer& balancer() const { return *balancer_; }

 private:
  float validation_loss();
  void lock_output_dir();
  void write_rank0(const std::string& file, const std::string& what, const std::function<void()>& write);
  std::string trace_path() const;
  void keep_strata(const std::string& path, int strata);
  void resume_from(const std::string& resume);
  std::string checkpoint_dir() const { return cfg_.output.dir + "/checkpoints"; }
  void save(int64_t steps_done, size_t next_stage, double flops, double seconds);
  std::unique_ptr<TraceWriter> open_trace(const TraceMetadata& meta) const;
  // Global-batch sequences this data-parallel rank takes, and where they start.
  int share() const;
  int first_sequence() const;
  int64_t tokens_per_step() const;
  GradientReduction gradient_reduction() const;
  bool overlapping() const;
  int64_t dp_bytes() const;

  // run()'s steps: the banner, config.yaml and the trace; per step the draw, the batch, the training step and the
  // ranks' timings, then the progress line, validation, the trace row and a checkpoint when due; at the end the
  // model file and the summary.
  struct RunState;
  struct StepRecord;
  void announce() const;
  std::unique_ptr<TraceWriter> start_outputs();
  StepRecord train_one_step(int64_t step, double slow, RunState& run);
  void record_step(StepRecord& rec, RunState& run, Progress& progress, TraceWriter* trace);
  void checkpoint_if_due(int64_t done, bool stopping, RunState& run, TraceWriter* trace);
  // Rank 0's write to the trace (none without one), its time counted in the run's trace seconds.
  void write_trace(TraceWriter* trace, const std::string& what, const std::function<void()>& write, RunState& run);
  void report_stop() const;
  nlohmann::json finish_outputs(const RunState& run, int64_t end_step);
  void share_timings(StepRecord& rec, RunState& run);
  std::string progress_tags(const StepRecord& rec, const RunState& run) const;
  void validate(StepRecord& rec, RunState& run, Progress& progress);
  TraceRow trace_row(const StepRecord& rec, const RunState& run) const;
  nlohmann::json summary(const RunState& run, int64_t end_step, double wall) const;

  Config cfg_;
  int threads_;
  std::unique_ptr<ProcessGrid> grid_;
  RunLock lock_;  // this run's claim on output.dir, from construction to the end of run()
  std::exception_ptr write_failure_;  // rank 0's failed write, until all ranks agree to stop
  std::unique_ptr<LoadBalancer> balancer_;
  MemoryPlan memory_plan_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<DataLoader> train_data_, val_data_;
  LrSchedule lr_;
  Schedule schedule_;
  std::unique_ptr<SubnetworkSampler> sampler_;
  std::vector<int> inputs_, targets_;
  std::vector<float> losses_;
  int64_t start_step_ = 0;
  double prior_flops_ = 0, prior_seconds_ = 0;  // of the steps before a resume
  bool checkpoint_last_ = false;
  double checkpoint_seconds_ = 0;
  int stop_signal_ = 0;
  int64_t stopped_at_ = 0;  // the step a run stopped early after (0: it did not)
  std::vector<double> imbalances_;
};

// The optimizer settings of a config (train.* and est.inactive).
AdamWConfig adamw_config(const Config& cfg);
// The EST schedule of a config (the full model when est.schedule is unset), checked against the model and the
// run length; warnings go to stderr.
Schedule schedule_for(const Config& cfg, const ModelShape& shape);
// The subnetwork draws a config asks for, over `strata` strata (0: the config's).
SubnetworkSampler sampler_for(const Config& cfg, const ModelShape& shape, int strata = 0);
// The most sequences of the global batch one of `dp` replicas may hold: with load balancing up to twice its
// even share, which the balancer may move to it; without, the even share.
int max_batch_share(const Config& cfg, int dp);

}  // namespace est
