#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <exception>
#include <filesystem>
#include <fstream>
#include <hdf5.h>
#include <iterator>
#include <unistd.h>

#include <cstdlib>

#include "est/flops.hpp"
#include "gemm.hpp"
#include "collective_error.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5_handle.hpp"
#include "io/io_error.hpp"
#include "io/llama2c_model.hpp"
#include "io/llmc_model.hpp"
#include "io/trace_writer.hpp"
#include "parallel/failure_agreement.hpp"
#include "train/progress.hpp"
#include "train/runtime.hpp"
#include "train/step.hpp"
#include "train/stop_request.hpp"
#include "train/timing.hpp"

namespace est {

namespace {

// Per rank and step, gathered on every rank: compute, communication and wait seconds, work, stop signal, whether
// the rank holds a failed write, and the data-parallel gradient sum's own and unhidden seconds.
constexpr int kGathered = 8;

// Per stage of the schedule: what the run spent there.
struct StageRecord {
  int64_t steps = 0;
  double seconds = 0, flops = 0, flops_full = 0;
  std::vector<double> step_seconds;
};

bool world_size_is_one_terminal(int world) {
  return world == 1 && isatty(fileno(stdout)) && !std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK") &&
         !std::getenv("SLURM_PROCID");
}

// The schedule file's text, for the records ("" without one).
std::string schedule_text(const Config& cfg) {
  if (cfg.est.schedule.empty()) return "";
  std::ifstream in(cfg.est.schedule);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TraceMetadata trace_metadata(const Config& cfg, const ProcessGrid& grid, const ModelShape& shape) {
  TraceMetadata m;
  m.config_yaml = cfg.yaml_text;
  m.schedule_yaml = schedule_text(cfg);
  m.git_revision = EST_GIT_REVISION;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  m.host = host;
  m.flops_convention = kFlopsConvention;
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  const std::string mpi_version(mpi, size_t(len));
  m.library_versions = std::string("HDF5 ") + H5_VERS_INFO + "; " + kokkos_description() + "; GEMM " + gemm::description() + "; " +
                       mpi_version.substr(0, mpi_version.find_first_of(",\n"));
  m.ranks = grid.world_size();
  m.tp = grid.tp_size();
  m.dp = grid.dp_size();
  m.arch = arch_name(shape.arch);
  m.n_layer = shape.n_layer;
  m.n_head = shape.n_head;
  m.n_kv_head = shape.kv_heads();
  m.n_embd = shape.n_embd;
  m.mlp_hidden = shape.neurons();
  return m;
}

}  // namespace

AdamWConfig adamw_config(const Config& cfg) {
  const auto& t = cfg.train;
  return AdamWConfig{float(t.beta1), float(t.beta2), float(t.eps), float(t.weight_decay), t.decay_embeddings,
                     cfg.est.inactive == "zero_grad"};
}

Schedule schedule_for(const Config& cfg, const ModelShape& shape) {
  Schedule s = cfg.est.schedule.empty() ? full_schedule() : load_schedule(cfg.est.schedule);
  for (const std::string& w : check_schedule(s, shape, cfg.train.steps, cfg.parallel.tp, cfg.head_unit()))
    std::fprintf(stderr, "est: warning: %s\n", w.c_str());
  return s;
}

SubnetworkSampler sampler_for(const Config& cfg, const ModelShape& shape, int strata) {
  return SubnetworkSampler(shape, cfg.est_seed(), cfg.est.layer_scaling == "inverse" ? LayerScaling::inverse : LayerScaling::none,
                           strata > 0 ? strata : cfg.est_strata(), cfg.head_unit());
}

int max_batch_share(const Config& cfg, int dp) {
  const int G = cfg.train.batch_size, even = (G + dp - 1) / dp;
  return cfg.parallel.balance && dp > 1 ? std::min(G, 2 * even) : even;
}

Trainer::Trainer(const Config& cfg, MPI_Comm world, const std::string& resume) : cfg_(cfg) {
  threads_ = configure_runtime(cfg_);
  if (cfg_.data.train.empty()) throw InputError(cfg_.path, "data.train", "required: a path or glob of token shards");
  try {
    grid_ = std::make_unique<ProcessGrid>(world, cfg_.parallel.tp);
  } catch (const std::invalid_argument& e) {
    throw InputError(cfg_.path, "parallel.tp", e.what());
  }
  ModelShape shape = cfg_.shape();
  const int G = cfg_.train.batch_size, T = cfg_.model.seq_len, dp = grid_->dp_size();
  if (G < dp)
    throw InputError(cfg_.path, "train.batch_size",
                     "the global batch of " + std::to_string(G) + " sequences is smaller than the " +
                         std::to_string(dp) + " data-parallel ranks");
  const int max_share = max_batch_share(cfg_, dp);
  const auto& par = cfg_.parallel;
  balancer_ = std::make_unique<LoadBalancer>(dp, grid_->tp_size(), G,
                                             BalancerConfig{par.balance_threshold, par.balance_patience, max_share});
  schedule_ = schedule_for(cfg_, shape);
  train_data_ = std::make_unique<DataLoader>(cfg_.data.train, G, T, shape.vocab_size, "data.train",
                                             DataOrder{cfg_.data.shuffle, cfg_.train.seed});
  if (!cfg_.data.val.empty())
    val_data_ = std::make_unique<DataLoader>(cfg_.data.val, G, T, shape.vocab_size, "data.val");
  if (cfg_.init_from_llmc()) {
    // The file fixes max_seq_len (its wpe rows); everything else must agree with the config.
    shape.max_seq_len = read_llmc_header(cfg_.init_llmc_path()).max_seq_len;
    if (shape.max_seq_len < T)
      throw InputError(cfg_.init_llmc_path(), "max_seq_len",
                       "is " + std::to_string(shape.max_seq_len) + ", shorter than model.seq_len " + std::to_string(T));
  }
  if (cfg_.init_from_llama2c()) {
    // The file's seq_len is its context, kept when the model is saved; the rest must agree with the config.
    shape.max_seq_len = read_llama2c_header(cfg_.init_llama2c_path()).max_seq_len;
    if (shape.max_seq_len < T)
      throw InputError(cfg_.init_llama2c_path(), "seq_len",
                       "is " + std::to_string(shape.max_seq_len) + ", shorter than model.seq_len " + std::to_string(T));
  }
  memory_plan_ = plan_memory(cfg_, shape, RankLayout{grid_->tp_size(), dp, max_share});
  require_fits(memory_plan_, grid_->world_mpi());
  model_ = make_model(shape, max_share, T, TensorParallel{{grid_->tp_rank(), grid_->tp_size()}, &grid_->tp()},
                      cfg_.attention());
  if (cfg_.init_from_llmc())
    load_llmc_model(cfg_.init_llmc_path(), *model_);
  else if (cfg_.init_from_llama2c())
    load_llama2c_model(cfg_.init_llama2c_path(), *model_);
  else
    model_->init_random(cfg_.init_seed());
  optimizer_ = std::make_unique<AdamW>(model_->layout(), adamw_config(cfg_));
  sampler_ = std::make_unique<SubnetworkSampler>(sampler_for(cfg_, shape));
  const auto& t = cfg_.train;
  lr_ = LrSchedule{float(t.lr), float(t.min_lr), t.warmup, t.steps,
                   t.lr_schedule == "wsd" ? LrDecay::wsd : LrDecay::cosine, t.decay_fraction};
  inputs_.resize(size_t(max_share) * T);
  targets_.resize(size_t(max_share) * T);
  // A managed run (requeued or chained jobs) also checkpoints its last step, so a later job sees it complete.
  checkpoint_last_ = cfg_.output.checkpoint_every > 0 || resume == "auto";
  // Once the input is known to be good, so that bad input leaves no directory behind.
  lock_output_dir();
  if (!resume.empty()) resume_from(resume);
}

// Rank 0 holds the lock; every rank learns whether it got it, so that none goes on into a collective alone.
void Trainer::lock_output_dir() {
  std::exception_ptr failure;
  if (grid_->world_rank() == 0) {
    try {
      lock_ = RunLock(cfg_.output.dir);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  raise_if_any_failed(grid_->world_mpi(), failure);
  // Holding the lock, this run is the directory's only writer: partial files are a killed run's, never a live one's.
  if (grid_->world_rank() == 0)
    for (const std::string& tmp : partial_checkpoints(checkpoint_dir())) std::filesystem::remove(tmp);
}

// A resumed run goes on drawing over the strata that drew its subnetworks so far, whatever the config now says.
void Trainer::keep_strata(const std::string& path, int strata) {
  if (strata == sampler_->strata()) return;
  if (sampler_->units().count % strata != 0 || !strata_fit_ranks(strata, grid_->tp_size()))
    throw InputError(path, "est_strata",
                     "the checkpoint's subnetworks were drawn over " + std::to_string(strata) +
                         " strata, which do not fit the " + std::to_string(sampler_->units().count) + " head units" +
                         " on parallel.tp = " + std::to_string(grid_->tp_size()) + " (sampler.hpp)");
  if (grid_->world_rank() == 0)
    std::printf("est: keeping the checkpoint's %d strata for the draws (the config gives %d)\n", strata,
                sampler_->strata());
  sampler_ = std::make_unique<SubnetworkSampler>(sampler_for(cfg_, model_->shape(), strata));
}

void Trainer::resume_from(const std::string& resume) {
  const bool lead = grid_->world_rank() == 0;
  const std::vector<std::string> candidates =
      resume == "auto" ? list_checkpoints(checkpoint_dir()) : std::vector<std::string>{resume};
  for (const std::string& path : candidates) {
    TrainingState s;
    const auto t0 = Clock::now();
    try {
      s = load_checkpoint(path, *model_, *optimizer_, *grid_);
    } catch (const InputError& e) {
      if (resume != "auto") throw;
      if (lead) std::fprintf(stderr, "est: warning: %s; trying the checkpoint before it\n", e.what());
      continue;
    }
    // A different seed would draw other subnetworks and data: the run would not continue, it would be another.
    if (s.est_seed != cfg_.est_seed())
      throw InputError(path, "est_seed", "the checkpoint's subnetworks were drawn with seed " + std::to_string(s.est_seed) +
                                             ", the config asks for " + std::to_string(cfg_.est_seed()));
    if (s.data_seed != cfg_.train.seed)
      throw InputError(path, "data_seed", "the checkpoint's data order used train.seed " + std::to_string(s.data_seed) +
                                              ", the config has " + std::to_string(cfg_.train.seed));
    // A chained or requeued job that starts after the run ended has nothing left to do.
    if (resume == "auto" && s.step == cfg_.train.steps) {
      start_step_ = s.step;
      if (lead) std::printf("est: %s is at step %lld of %d: the run is complete, nothing to train\n", path.c_str(),
                            static_cast<long long>(s.step), cfg_.train.steps);
      return;
    }
    if (s.step >= cfg_.train.steps)
      throw InputError(path, "step", "the checkpoint is at step " + std::to_string(s.step) + ", not before train.steps " +
                                         std::to_string(cfg_.train.steps));
    keep_strata(path, s.strata);
    train_data_->seek(s.data);
    // The balancer's plan only means something on the layout that made it.
    if (s.tp == grid_->tp_size() && s.dp == grid_->dp_size() && !s.balancer.empty()) balancer_->restore(s.balancer);
    start_step_ = s.step;
    prior_flops_ = s.flops_so_far;
    prior_seconds_ = s.train_seconds;
    if (lead) {
      const double mb = double(std::filesystem::file_size(path)) / 1e6, dt = seconds_since(t0);
      std::printf("est: resuming from %s at step %lld (%.0f MB verified and read in %.2f s, %.0f MB/s)\n",
                  path.c_str(), static_cast<long long>(s.step), mb, dt, mb / dt);
    }
    return;
  }
  if (lead) std::printf("est: no checkpoint to resume from in %s; starting from the beginning\n", checkpoint_dir().c_str());
}

// A resumed run continues its trace; one resumed on another layout (its per-rank columns change) keeps the old
// trace under another name and starts a new one.
std::string Trainer::trace_path() const { return cfg_.output.dir + "/trace.h5"; }

std::unique_ptr<TraceWriter> Trainer::open_trace(const TraceMetadata& meta) const {
  const std::string path = trace_path();
  if (start_step_ > 0 && std::filesystem::exists(path)) {
    try {
      return std::make_unique<TraceWriter>(path, meta, start_step_);
    } catch (const InputError& e) {
      const std::string kept = cfg_.output.dir + "/trace_before_step_" + std::to_string(start_step_) + ".h5";
      std::filesystem::rename(path, kept);
      std::fprintf(stderr, "est: warning: %s; it is kept as %s and a new trace starts\n", e.what(), kept.c_str());
    }
  }
  return std::make_unique<TraceWriter>(path, meta);
}

// A write only rank 0 makes (trace, model, summary). Its failure waits for the next point all ranks reach (the next
// step's gather, a checkpoint, the end), so that every rank stops there together; later writes are skipped.
void Trainer::write_rank0(const std::string& file, const std::string& what, const std::function<void()>& write) {
  if (write_failure_) return;
  const auto failed = [&](int err, const std::string& detail) { write_failure_ = write_failure(file, what, err, detail); };
  try {
    write();
  } catch (const IoError&) {
    write_failure_ = std::current_exception();
  } catch (const H5Error& e) {
    failed(e.err(), e.what());
  } catch (const std::system_error& e) {
    failed(e.code().value(), e.what());
  } catch (const std::exception& e) {
    failed(0, e.what());
  }
}

void Trainer::save(int64_t steps_done, size_t next_stage, double flops, double seconds) {
  raise_if_any_failed(grid_->world_mpi(), write_failure_);
  TrainingState s;
  s.step = steps_done;
  s.stage = int64_t(next_stage);
  s.est_seed = cfg_.est_seed();
  s.strata = sampler_->strata();
  s.data_seed = cfg_.train.seed;
  s.data = train_data_->position();
  s.balancer = balancer_->state();
  s.tp = grid_->tp_size();
  s.dp = grid_->dp_size();
  s.config_yaml = cfg_.yaml_text;
  s.schedule_yaml = schedule_text(cfg_);
  s.flops_so_far = flops;
  s.train_seconds = seconds;
  const bool lead = grid_->world_rank() == 0;
  if (lead) std::filesystem::create_directories(checkpoint_dir());
  MPI_Barrier(grid_->world_mpi());
  const std::string path = checkpoint_path(checkpoint_dir(), steps_done);
  const auto t0 = Clock::now();
  bool collective = true;
  try {
    collective = save_checkpoint(path, *model_, *optimizer_, s, *grid_);
  } catch (const CollectiveError& e) {
    const std::vector<std::string> good = list_checkpoints(checkpoint_dir());
    const std::string message = std::string(e.what()) + "; " +
                                (good.empty() ? "no good checkpoint yet" : "the newest good checkpoint is " + good[0]);
    if (cfg_.output.on_checkpoint_error == "stop") throw CollectiveError(message, e.status(), e.reports());
    if (e.reports())
      std::fprintf(stderr, "est: warning: %s; training goes on, the next checkpoint tries again\n", message.c_str());
    return;
  }
  if (!lead) return;
  if (!collective) std::fprintf(stderr, "est: warning: HDF5 wrote %s with independent, not collective, I/O\n", path.c_str());
  const double mb = double(std::filesystem::file_size(path)) / 1e6, dt = seconds_since(t0);
  checkpoint_seconds_ += dt;
  std::printf("est: checkpoint %s: %.0f MB in %.2f s (%.0f MB/s)\n", path.c_str(), mb, dt, mb / dt);
  const std::vector<std::string> all = list_checkpoints(checkpoint_dir());
  for (size_t i = size_t(cfg_.output.keep); i < all.size(); ++i) std::filesystem::remove(all[i]);
}

int Trainer::share() const { return int(balancer_->batch_shares()[grid_->dp_rank()]); }
int Trainer::first_sequence() const { return int(balancer_->first_sequence(grid_->dp_rank())); }

// Validation always measures the full model: the subnetworks are a way of training it, not what is trained.
// Its batches are the same every time, spread evenly over the validation data; the data-parallel ranks share
// each one evenly.
float Trainer::validation_loss() {
  const ModelShape& s = model_->shape();
  model_->set_subnetwork(Subnetwork::full(s.n_layer, model_->layout().heads, model_->layout().neurons));
  const int G = cfg_.train.batch_size, T = cfg_.model.seq_len, dp = grid_->dp_size(), r = grid_->dp_rank();
  const int count = G / dp + (r < G % dp), first = r * (G / dp) + std::min(r, G % dp);
  const int n = cfg_.train.eval_batches;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    val_data_->seek_window(i * val_data_->windows() / n);
    val_data_->next_batch(inputs_.data(), targets_.data(), first, count);
    model_->set_batch(inputs_.data(), targets_.data(), count);
    sum += double(model_->forward()) * count * T;
  }
  grid_->dp().allreduce_sum(&sum, 1);
  return static_cast<float>(sum / (double(n) * G * T));
}

// What this invocation of run() has measured so far; a resumed run's FLOPs and seconds start from the checkpoint's.
struct Trainer::RunState {
  static constexpr int kTotals = 5;
  RunState(size_t stage_count, int world, double prior_flops, double prior_seconds)
      : stages(stage_count), rank_totals(kTotals * size_t(world), 0.0), flops_so_far(prior_flops),
        train_seconds_so_far(prior_seconds) {}
  std::vector<StageRecord> stages;
  std::vector<double> rank_totals;  // per rank: compute, comm, wait, gradient sum, its unhidden part
  double imbalance_sum = 0, imbalance_max = 0;
  int64_t grad_bytes = 0;
  float loss = NAN, val_loss = NAN;
  double flops_so_far, train_seconds_so_far, trace_seconds = 0;
  nlohmann::json evaluations = nlohmann::json::array();
  Clock::time_point start = Clock::now();
};

// One step as the progress line and the trace report it.
struct Trainer::StepRecord {
  int64_t step = 0;  // 0-based
  size_t stage = 0;
  Subnetwork sub;
  float lr = 0, val_loss = NAN;
  StepStats stats;
  std::vector<double> gathered;  // every rank's kGathered numbers
  double imbalance = 1, seconds = 0;
  StepFlops flops;
  int64_t tp_bytes = 0, dp_bytes = 0;
};

int64_t Trainer::tokens_per_step() const { return int64_t(cfg_.train.batch_size) * cfg_.model.seq_len; }

GradientReduction Trainer::gradient_reduction() const { return {cfg_.parallel.bucket_mb, cfg_.parallel.overlap}; }

bool Trainer::overlapping() const {
  return cfg_.parallel.overlap && grid_->dp_async() && grid_->dp_async()->overlaps();
}

// The data-parallel payload so far: the group's collectives and the gradient's sums.
int64_t Trainer::dp_bytes() const {
  return grid_->dp().stats().bytes + (grid_->dp_async() ? grid_->dp_async()->stats().bytes : 0);
}

void Trainer::announce() const {
  const ModelShape& shape = model_->shape();
  const auto& t = cfg_.train;
  std::printf("est: %s L=%d H=%d%s C=%d T=%d V=%d (%.2fM parameters), batch %d, %d steps\n",
              shape.arch == Arch::llama ? "Llama" : "GPT-2", shape.n_layer, shape.n_head,
              shape.kv_heads() == shape.n_head ? "" : (" KV=" + std::to_string(shape.kv_heads())).c_str(), shape.n_embd, cfg_.model.seq_len, shape.vocab_size, ParameterLayout(shape).total / 1e6,
              t.batch_size, t.steps);
  std::printf("est: kernels on %s; GEMM %s on %d thread(s)\n", kokkos_description().c_str(),
              gemm::description().c_str(), threads_);
  std::printf("est: memory: %s\n", memory_plan_summary(memory_plan_).c_str());
  if (grid_->world_size() > 1)
    std::printf("est: %d ranks: tensor-parallel %d x data-parallel %d\n", grid_->world_size(), grid_->tp_size(),
                grid_->dp_size());
  if (grid_->dp_size() > 1) {
    const bool asked = cfg_.parallel.overlap;
    std::printf("est: gradient sums in buckets of %g MiB, %s\n", cfg_.parallel.bucket_mb,
                overlapping() ? "overlapped with the backward pass"
                : asked       ? "after the backward pass (the MPI library gives no MPI_THREAD_MULTIPLE)"
                              : "after the backward pass (parallel.overlap: false)");
  }
  if (!cfg_.est.schedule.empty())
    std::printf("est: schedule %s, %zu stage(s), inactive parameters: %s\n", cfg_.est.schedule.c_str(),
                schedule_.stages.size(), cfg_.est.inactive.c_str());
}

Trainer::StepRecord Trainer::train_one_step(int64_t step, double slow, RunState& run) {
  const auto ts = Clock::now();
  const ModelShape& shape = model_->shape();
  StepRecord rec;
  rec.step = step;
  rec.stage = schedule_.stage_at(step, cfg_.train.steps);
  // Once the balancer has measured the tensor-parallel ranks, the leftover heads and neurons go to the fastest.
  const bool place_extras = cfg_.parallel.balance && balancer_->replans() > 0 && grid_->tp_size() > 1;
  rec.sub = sampler_->sample(schedule_.stages[rec.stage], step, place_extras ? &balancer_->tp_priority() : nullptr);
  const int64_t tp_bytes0 = grid_->tp().stats().bytes, dp_bytes0 = dp_bytes();
  const int count = share();
  // A bad window (a corrupted shard) may reach one data-parallel rank only: all agree before the step's collectives.
  std::exception_ptr bad_data;
  try {
    train_data_->next_batch(inputs_.data(), targets_.data(), first_sequence(), count);
  } catch (const InputError&) {
    bad_data = std::current_exception();
  }
  if (grid_->world_size() > 1) raise_if_any_failed(grid_->world_mpi(), bad_data);
  if (bad_data) std::rethrow_exception(bad_data);
  model_->set_subnetwork(rec.sub.local_part(grid_->tp_rank(), grid_->tp_size(), shape.n_head, shape.neurons()));
  model_->set_batch(inputs_.data(), targets_.data(), count);
  rec.lr = lr_.at(int(step));
  rec.stats = train_step(*model_, *optimizer_, rec.lr, cfg_.train.grad_clip,
                         StepContext{grid_.get(), tokens_per_step(), slow, gradient_reduction()});
  rec.tp_bytes = grid_->tp().stats().bytes - tp_bytes0;
  rec.dp_bytes = dp_bytes() - dp_bytes0;
  run.loss = rec.stats.loss;
  losses_.push_back(run.loss);
  run.grad_bytes += rec.stats.grad_bytes;
  share_timings(rec, run);

  rec.seconds = seconds_since(ts);
  rec.flops = step_flops(shape, cfg_.model.seq_len, tokens_per_step(), rec.sub);
  StageRecord& r = run.stages[rec.stage];
  ++r.steps;
  r.seconds += rec.seconds;
  r.flops += rec.flops.executed;
  r.flops_full += rec.flops.full;
  r.step_seconds.push_back(rec.seconds);
  run.flops_so_far += rec.flops.executed;
  run.train_seconds_so_far += rec.seconds;
  return rec;
}

// Every rank's times and work (the heads and neurons it computed) reach every rank, so every rank's balancer
// reaches the same plan; a stop signal rides along, so every rank stops after the same step.
void Trainer::share_timings(StepRecord& rec, RunState& run) {
  const int world = grid_->world_size();
  bool failed_write = false;
  double work = 0;
  for (const LayerSelection& l : model_->subnetwork().layers) work += l.active ? l.heads.size() + l.neurons.size() : 0;
  const double mine[kGathered] = {rec.stats.compute_seconds,   rec.stats.comm_seconds,
                                  rec.stats.wait_seconds,      work,
                                  double(StopRequest::signal()), write_failure_ ? 1.0 : 0.0,
                                  rec.stats.dp_reduce_seconds, rec.stats.dp_exposed_seconds};
  rec.gathered.assign(kGathered * size_t(world), 0.0);
  grid_->world().allgather(mine, kGathered, rec.gathered.data());
  std::vector<RankTiming> timings(world);
  for (int r = 0; r < world; ++r) {
    const double* a = &rec.gathered[kGathered * size_t(r)];
    timings[r] = {a[0], a[1], a[2], a[3]};
    const double totals[RunState::kTotals] = {a[0], a[1], a[2], a[6], a[7]};
    for (int k = 0; k < RunState::kTotals; ++k) run.rank_totals[RunState::kTotals * r + k] += totals[k];
    stop_signal_ = std::max(stop_signal_, int(a[4]));
    failed_write = failed_write || a[5] > 0;
  }
  if (failed_write) raise_if_any_failed(grid_->world_mpi(), write_failure_);
  const int64_t steps = cfg_.train.steps;
  const bool stage_ends = rec.step + 1 < steps && schedule_.stage_at(rec.step + 1, steps) != rec.stage;
  if (cfg_.parallel.balance) balancer_->observe(timings, stage_ends);
  double max_compute = 0, mean_compute = 0;
  for (const RankTiming& r : timings) {
    max_compute = std::max(max_compute, r.compute);
    mean_compute += r.compute / world;
  }
  rec.imbalance = mean_compute > 0 ? max_compute / mean_compute : 1.0;
  imbalances_.push_back(rec.imbalance);
  run.imbalance_sum += rec.imbalance;
  run.imbalance_max = std::max(run.imbalance_max, rec.imbalance);
}

// The stage, and with several ranks the imbalance and the gradient payload reduced against the full model's.
std::string Trainer::progress_tags(const StepRecord& rec, const RunState& run) const {
  std::string tags;
  if (run.stages.size() > 1) tags += "stage " + std::to_string(rec.stage + 1);
  if (grid_->world_size() > 1) {
    char line[96];
    std::snprintf(line, sizeof line, "%simbalance %.2f | grad %.1f/%.1f MB", tags.empty() ? "" : " | ",
                  rec.imbalance, rec.stats.grad_bytes / 1e6, double(model_->layout().total) * sizeof(float) / 1e6);
    tags += line;
  }
  return tags;
}

void Trainer::validate(StepRecord& rec, RunState& run, Progress& progress) {
  rec.val_loss = run.val_loss = validation_loss();
  run.evaluations.push_back({{"step", rec.step + 1}, {"val_loss", run.val_loss}, {"flops", run.flops_so_far}});
  char line[96];
  std::snprintf(line, sizeof line, "step %lld: val loss %.4f", static_cast<long long>(rec.step + 1), run.val_loss);
  progress.message(line);
}

TraceRow Trainer::trace_row(const StepRecord& rec, const RunState& run) const {
  TraceRow row;
  row.step = rec.step + 1;
  row.stage = int32_t(rec.stage + 1);
  const StageSpec& spec = schedule_.stages[rec.stage];
  row.p_heads = spec.p_heads;
  row.p_mlp = spec.p_mlp;
  row.p_layers = spec.p_layers;
  for (const LayerSelection& l : rec.sub.layers) {
    row.active_layers.push_back(l.active);
    row.active_heads.push_back(int32_t(l.active ? l.heads.size() : 0));
    row.active_neurons.push_back(int32_t(l.active ? l.neurons.size() : 0));
  }
  row.flops = rec.flops.executed;
  row.flops_cumulative = run.flops_so_far;
  row.flops_full = rec.flops.full;
  row.loss = rec.stats.loss;
  row.val_loss = rec.val_loss;
  row.lr = rec.lr;
  row.grad_norm = rec.stats.grad_norm;
  row.tokens = (rec.step + 1) * tokens_per_step();
  row.wall_seconds = seconds_since(run.start);
  for (int k = 0; k < grid_->world_size(); ++k) {
    row.compute_seconds.push_back(rec.gathered[kGathered * k]);
    row.comm_seconds.push_back(rec.gathered[kGathered * k + 1]);
    row.wait_seconds.push_back(rec.gathered[kGathered * k + 2]);
    row.dp_reduce_seconds.push_back(rec.gathered[kGathered * k + 6]);
    row.dp_exposed_seconds.push_back(rec.gathered[kGathered * k + 7]);
  }
  row.dp_bytes = double(rec.dp_bytes);
  row.tp_bytes = double(rec.tp_bytes);
  return row;
}

// summary.json: the whole run's figures (a resumed run's include the steps before it), by stage, per rank, and
// the traffic.
nlohmann::json Trainer::summary(const RunState& run, int64_t end_step, double wall) const {
  const auto& t = cfg_.train;
  const ModelShape& shape = model_->shape();
  const int world = grid_->world_size();
  const CommStats tp_comm = grid_->tp().stats();
  // This invocation's steps, by stage; the totals include the steps before a resume.
  const double n_run = double(end_step - start_step_);
  const double flops_full = step_flops(shape, cfg_.model.seq_len, tokens_per_step(), Subnetwork::full(shape)).full * t.steps;
  double train_seconds = prior_seconds_, flops = prior_flops_;
  std::vector<double> full_steps;
  nlohmann::json stage_list = nlohmann::json::array();
  for (size_t i = 0; i < run.stages.size(); ++i) {
    const StageRecord& r = run.stages[i];
    const StageSpec& spec = schedule_.stages[i];
    train_seconds += r.seconds;
    flops += r.flops;
    if (spec.is_full()) full_steps.insert(full_steps.end(), r.step_seconds.begin(), r.step_seconds.end());
    stage_list.push_back({{"stage", i + 1}, {"p_heads", spec.p_heads}, {"p_mlp", spec.p_mlp},
                          {"p_layers", spec.p_layers}, {"steps", r.steps}, {"seconds", r.seconds},
                          {"step_seconds_median", median(r.step_seconds)},
                          {"flops", r.flops}, {"flops_full_equivalent", r.flops_full}});
  }
  nlohmann::json per_rank = nlohmann::json::array();
  for (int r = 0; r < world; ++r) {
    const double* totals = &run.rank_totals[RunState::kTotals * size_t(r)];
    per_rank.push_back({{"rank", r},
                        {"compute_seconds_per_step", totals[0] / n_run},
                        {"comm_seconds_per_step", totals[1] / n_run},
                        {"wait_seconds_per_step", totals[2] / n_run},
                        {"dp_reduce_seconds_per_step", totals[3] / n_run},
                        {"dp_exposed_seconds_per_step", totals[4] / n_run}});
  }
  nlohmann::json s;
  s["final_train_loss"] = run.loss;
  s["final_val_loss"] = std::isfinite(run.val_loss) ? nlohmann::json(run.val_loss) : nlohmann::json(nullptr);
  s["steps"] = t.steps;
  s["tokens"] = tokens_per_step() * t.steps;
  s["wall_seconds"] = wall;
  s["train_seconds"] = train_seconds;
  s["tokens_per_second"] = tokens_per_step() * t.steps / train_seconds;
  s["flops"] = flops;
  s["flops_full_equivalent"] = flops_full;
  s["flops_saving"] = 1.0 - flops / flops_full;
  // Against the same steps on the full model, timed by this run's own full-model steps (if it has any).
  s["time_saving_estimate"] = full_steps.empty()
                                  ? nlohmann::json(nullptr)
                                  : nlohmann::json(1.0 - train_seconds / (t.steps * median(full_steps)));
  s["flops_convention"] = kFlopsConvention;
  s["stages"] = stage_list;
  s["evaluations"] = run.evaluations;
  s["grid"] = {{"ranks", world}, {"tp", grid_->tp_size()}, {"dp", grid_->dp_size()}};
  s["imbalance"] = {{"mean", run.imbalance_sum / n_run},
                    {"max", run.imbalance_max},
                    {"replans", balancer_->replans()},
                    {"batch_shares", balancer_->batch_shares()}};
  s["per_rank"] = per_rank;
  // Rank 0's traffic; every rank of a group moves the same payload.
  s["communication"] = {{"dp_gradient_bytes_per_step", double(run.grad_bytes) / n_run},
                        {"dp_gradient_bytes_full_model", double(model_->layout().total) * sizeof(float)},
                        {"dp_bytes_per_step", double(dp_bytes()) / n_run},
                        {"tp_bytes_per_step", double(tp_comm.bytes) / n_run},
                        {"dp_bucket_mb", cfg_.parallel.bucket_mb},
                        {"dp_overlap", overlapping()}};
  s["trace_seconds_per_step"] = run.trace_seconds / n_run;  // rank 0's time appending and flushing trace rows
  s["checkpoint_seconds"] = checkpoint_seconds_;
  s["schedule"] = cfg_.est.schedule.empty() ? nlohmann::json(nullptr) : nlohmann::json(cfg_.est.schedule);
  s["inactive"] = cfg_.est.inactive;
  s["arch"] = arch_name(shape.arch);
  s["parameters"] = ParameterLayout(shape).total;
  s["threads"] = threads_;
  s["kokkos"] = kokkos_description();
  s["gemm_backend"] = gemm::backend_name(gemm::current_backend());
  s["precision"] = gemm::precision_name(gemm::current_precision());
  s["attention"] = attention_kind_name(model_->attention());
  s["config"] = cfg_.path;
  return s;
}

// The banner, config.yaml and the trace (after a resume it continues, dropping rows past the checkpoint).
std::unique_ptr<TraceWriter> Trainer::start_outputs() {
  std::unique_ptr<TraceWriter> trace;
  if (grid_->world_rank() == 0) {
    announce();
    const std::string record = cfg_.output.dir + "/config.yaml";
    write_rank0(record, "recording the effective config", [&] { write_text_atomic(record, cfg_.yaml_text + "\n"); });
    if (cfg_.output.trace)
      write_rank0(trace_path(), "creating the trace",
                  [&] { trace = open_trace(trace_metadata(cfg_, *grid_, model_->shape())); });
  }
  raise_if_any_failed(grid_->world_mpi(), write_failure_);
  return trace;
}

void Trainer::write_trace(TraceWriter* trace, const std::string& what, const std::function<void()>& write,
                          RunState& run) {
  if (!trace) return;
  const auto t0 = Clock::now();
  write_rank0(trace_path(), what, write);
  run.trace_seconds += seconds_since(t0);
}

// After a step: the progress line, validation when due, the trace row.
void Trainer::record_step(StepRecord& rec, RunState& run, Progress& progress, TraceWriter* trace) {
  const auto& t = cfg_.train;
  const int64_t done = rec.step + 1;
  progress.step(int(done), rec.stats.loss, rec.seconds, tokens_per_step(), progress_tags(rec, run));
  if (val_data_ && (done == t.steps || (t.eval_every > 0 && done % t.eval_every == 0))) validate(rec, run, progress);
  write_trace(trace, "appending step " + std::to_string(done) + " to the trace",
              [&] { trace->append(trace_row(rec, run)); }, run);
}

// A checkpoint when one is due after `done` steps: the trace first holds every step the checkpoint does. The last
// step's comes after the model file and the summary (finish_outputs): a checkpoint of the last step says the run
// is complete, so it must not exist before all of the run's outputs do.
void Trainer::checkpoint_if_due(int64_t done, bool stopping, RunState& run, TraceWriter* trace) {
  const bool due = stopping || (cfg_.output.checkpoint_every > 0 && done % cfg_.output.checkpoint_every == 0);
  if (!due || done == cfg_.train.steps) return;
  write_trace(trace, "writing the trace up to step " + std::to_string(done), [&] { trace->flush(); }, run);
  save(done, schedule_.stage_at(done, cfg_.train.steps), run.flops_so_far, run.train_seconds_so_far);
}

void Trainer::report_stop() const {
  if (grid_->world_rank() != 0) return;
  std::printf("est: stopped after step %lld of %d (%s) with a checkpoint; continue with --resume auto\n",
              static_cast<long long>(stopped_at_), cfg_.train.steps,
              stop_signal_ == SIGUSR1   ? "SIGUSR1"
              : stop_signal_ == SIGTERM ? "SIGTERM"
                                        : "train.stop_after");
}

// The model file and summary.json of a finished run, then the checkpoint of its last step.
nlohmann::json Trainer::finish_outputs(const RunState& run, int64_t end_step) {
  const bool lead = grid_->world_rank() == 0;
  // The training's figures, before gathering the model adds to the tensor-parallel traffic.
  const nlohmann::json s = summary(run, end_step, seconds_since(run.start));
  if (cfg_.output.save_model) {
    const std::vector<float> params = model_->gather_params();  // a collective over each tensor-parallel group
    const std::string file = cfg_.output.dir + "/model.bin";
    const auto save = model_->shape().arch == Arch::llama ? save_llama2c_model : save_llmc_model;
    if (lead) write_rank0(file, "writing the model", [&] { save(file, model_->shape(), params); });
  }
  const std::string summary_file = cfg_.output.dir + "/summary.json";
  if (lead)
    write_rank0(summary_file, "writing the summary", [&] { write_text_atomic(summary_file, s.dump(2) + "\n"); });
  raise_if_any_failed(grid_->world_mpi(), write_failure_);
  const int steps = cfg_.train.steps;
  if (checkpoint_last_) save(steps, schedule_.stage_at(steps - 1, steps), run.flops_so_far, run.train_seconds_so_far);
  return s;
}

nlohmann::json Trainer::run() {
  const auto& t = cfg_.train;
  stop_signal_ = 0;
  stopped_at_ = 0;
  // The directory is free again when the run ends, however it ends.
  const struct Unlock {
    RunLock& lock;
    ~Unlock() { lock.release(); }
  } unlock{lock_};
  if (complete()) return nlohmann::json();
  std::unique_ptr<TraceWriter> trace = start_outputs();
  const int64_t end_step = t.stop_after > 0 ? std::min<int64_t>(t.steps, start_step_ + t.stop_after) : t.steps;
  // mpirun and srun hand ranks a pseudo-terminal: a live line only for a single process on a terminal.
  const bool live = world_size_is_one_terminal(grid_->world_size());
  Progress progress(t.steps, t.log_every, grid_->world_rank() == 0 ? stdout : nullptr, live);
  const double slow = cfg_.parallel.slow_rank == grid_->world_rank() ? cfg_.parallel.slow_factor : 1.0;
  grid_->tp().reset_stats();
  grid_->dp().reset_stats();
  if (grid_->dp_async()) grid_->dp_async()->reset_stats();
  RunState run(schedule_.stages.size(), grid_->world_size(), prior_flops_, prior_seconds_);
  for (int64_t step = start_step_; step < end_step; ++step) {
    StepRecord rec = train_one_step(step, slow, run);
    record_step(rec, run, progress, trace.get());
    const bool stopping = (step + 1 == end_step && end_step < t.steps) || (stop_signal_ && step + 1 < t.steps);
    checkpoint_if_due(step + 1, stopping, run, trace.get());
    if (stopping) {
      stopped_at_ = step + 1;
      break;
    }
  }
  progress.finish();
  write_rank0(trace_path(), "writing the trace", [&] {
    if (trace) trace->flush();
    trace.reset();
  });
  raise_if_any_failed(grid_->world_mpi(), write_failure_);
  if (stopped_at_ > 0) {
    report_stop();
    return nlohmann::json();
  }
  return finish_outputs(run, end_step);
}

}  // namespace est
