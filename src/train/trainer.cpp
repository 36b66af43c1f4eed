#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "est/flops.hpp"
#include "gemm.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/llmc_model.hpp"
#include "train/progress.hpp"
#include "train/runtime.hpp"
#include "train/step.hpp"
#include "train/timing.hpp"

namespace est {

namespace {

// Per stage of the schedule: what the run spent there.
struct StageRecord {
  int64_t steps = 0;
  double seconds = 0, flops = 0, flops_full = 0;
  std::vector<double> step_seconds;
};

}  // namespace

AdamWConfig adamw_config(const Config& cfg) {
  const auto& t = cfg.train;
  return AdamWConfig{float(t.beta1), float(t.beta2), float(t.eps), float(t.weight_decay), t.decay_embeddings,
                     cfg.est.inactive == "zero_grad"};
}

Schedule schedule_for(const Config& cfg, const ModelShape& shape) {
  Schedule s = cfg.est.schedule.empty() ? full_schedule() : load_schedule(cfg.est.schedule);
  for (const std::string& w : check_schedule(s, shape, cfg.train.steps)) std::fprintf(stderr, "est: warning: %s\n", w.c_str());
  return s;
}

LayerScaling layer_scaling_for(const Config& cfg) {
  return cfg.est.layer_scaling == "inverse" ? LayerScaling::inverse : LayerScaling::none;
}

Trainer::Trainer(const Config& cfg) : cfg_(cfg) {
  threads_ = configure_runtime(cfg_.runtime);
  if (cfg_.data.train.empty()) throw InputError(cfg_.path, "data.train", "required: a path or glob of token shards");
  ModelShape shape = cfg_.shape();
  const int B = cfg_.train.batch_size, T = cfg_.model.seq_len;
  schedule_ = schedule_for(cfg_, shape);
  train_data_ = std::make_unique<DataLoader>(cfg_.data.train, B, T, shape.vocab_size, "data.train", 0, 1,
                                             DataOrder{cfg_.data.shuffle, cfg_.train.seed});
  if (!cfg_.data.val.empty())
    val_data_ = std::make_unique<DataLoader>(cfg_.data.val, B, T, shape.vocab_size, "data.val");
  if (cfg_.init_from_llmc()) {
    // The file fixes max_seq_len (its wpe rows); everything else must agree with the config.
    shape.max_seq_len = read_llmc_header(cfg_.init_llmc_path()).max_seq_len;
    if (shape.max_seq_len < T)
      throw InputError(cfg_.init_llmc_path(), "max_seq_len",
                       "is " + std::to_string(shape.max_seq_len) + ", shorter than model.seq_len " + std::to_string(T));
  }
  model_ = std::make_unique<GPT2>(shape, B, T);
  if (cfg_.init_from_llmc())
    load_llmc_model(cfg_.init_llmc_path(), *model_);
  else
    model_->init_random(cfg_.init_seed());
  optimizer_ = std::make_unique<AdamW>(model_->layout(), adamw_config(cfg_));
  sampler_ = std::make_unique<SubnetworkSampler>(shape, cfg_.est_seed(), layer_scaling_for(cfg_));
  const auto& t = cfg_.train;
  lr_ = LrSchedule{float(t.lr), float(t.min_lr), t.warmup, t.steps};
  inputs_.resize(size_t(B) * T);
  targets_.resize(size_t(B) * T);
}

// Validation always measures the full model: the subnetworks are a way of training it, not what is trained.
// Its batches are the same every time, spread evenly over the validation data.
float Trainer::validation_loss() {
  model_->set_subnetwork(Subnetwork::full(model_->shape()));
  const int n = cfg_.train.eval_batches;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    val_data_->seek_window(i * val_data_->windows() / n);
    val_data_->next_batch(inputs_.data(), targets_.data());
    model_->set_batch(inputs_.data(), targets_.data());
    sum += model_->forward();
  }
  return static_cast<float>(sum / cfg_.train.eval_batches);
}

nlohmann::json Trainer::run() {
  const auto& t = cfg_.train;
  const ModelShape& shape = model_->shape();
  const int T = cfg_.model.seq_len;
  const long long tokens_per_step = static_cast<long long>(t.batch_size) * T;
  std::filesystem::create_directories(cfg_.output.dir);
  write_text_atomic(cfg_.output.dir + "/config.yaml", cfg_.yaml_text + "\n");

  std::printf("est: GPT-2 L=%d H=%d C=%d T=%d V=%d (%.2fM parameters), B=%d, %d steps, GEMM %s on %d threads\n",
              shape.n_layer, shape.n_head, shape.n_embd, T, shape.vocab_size, model_->layout().total / 1e6,
              t.batch_size, t.steps, gemm::backend_name(gemm::current_backend()), threads_);
  if (!cfg_.est.schedule.empty())
    std::printf("est: schedule %s, %zu stage(s), inactive parameters: %s\n", cfg_.est.schedule.c_str(),
                schedule_.stages.size(), cfg_.est.inactive.c_str());
  Progress progress(t.steps, t.log_every);
  std::vector<StageRecord> stages(schedule_.stages.size());
  float loss = NAN, val_loss = NAN;
  double flops_so_far = 0;
  nlohmann::json evaluations = nlohmann::json::array();
  const auto t0 = Clock::now();
  for (int step = 0; step < t.steps; ++step) {
    const auto ts = Clock::now();
    const size_t stage = schedule_.stage_at(step, t.steps);
    const Subnetwork sub = sampler_->sample(schedule_.stages[stage], step);
    train_data_->next_batch(inputs_.data(), targets_.data());
    model_->set_subnetwork(sub);
    model_->set_batch(inputs_.data(), targets_.data());
    loss = train_step(*model_, *optimizer_, lr_.at(step), t.grad_clip).loss;
    const double dt = seconds_since(ts);
    const StepFlops f = step_flops(shape, T, tokens_per_step, sub);
    StageRecord& r = stages[stage];
    ++r.steps;
    r.seconds += dt;
    r.flops += f.executed;
    r.flops_full += f.full;
    r.step_seconds.push_back(dt);
    flops_so_far += f.executed;
    progress.step(step + 1, loss, dt, tokens_per_step, stages.size() > 1 ? int(stage) + 1 : 0);
    const bool last = step + 1 == t.steps;
    if (val_data_ && (last || (t.eval_every > 0 && (step + 1) % t.eval_every == 0))) {
      val_loss = validation_loss();
      evaluations.push_back({{"step", step + 1}, {"val_loss", val_loss}, {"flops", flops_so_far}});
      char line[96];
      std::snprintf(line, sizeof line, "step %d: val loss %.4f", step + 1, val_loss);
      progress.message(line);
    }
  }
  progress.finish();
  const double wall = seconds_since(t0);
  if (cfg_.output.save_model) save_llmc_model(cfg_.output.dir + "/model.bin", *model_);

  double train_seconds = 0, flops = 0, flops_full = 0;
  std::vector<double> full_steps;
  nlohmann::json stage_list = nlohmann::json::array();
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageRecord& r = stages[i];
    const StageSpec& spec = schedule_.stages[i];
    train_seconds += r.seconds;
    flops += r.flops;
    flops_full += r.flops_full;
    if (spec.is_full()) full_steps.insert(full_steps.end(), r.step_seconds.begin(), r.step_seconds.end());
    stage_list.push_back({{"stage", i + 1}, {"p_heads", spec.p_heads}, {"p_mlp", spec.p_mlp},
                          {"p_layers", spec.p_layers}, {"steps", r.steps}, {"seconds", r.seconds},
                          {"step_seconds_median", median(r.step_seconds)},
                          {"flops", r.flops}, {"flops_full_equivalent", r.flops_full}});
  }
  nlohmann::json s;
  s["final_train_loss"] = loss;
  s["final_val_loss"] = std::isfinite(val_loss) ? nlohmann::json(val_loss) : nlohmann::json(nullptr);
  s["steps"] = t.steps;
  s["tokens"] = tokens_per_step * t.steps;
  s["wall_seconds"] = wall;
  s["train_seconds"] = train_seconds;
  s["tokens_per_second"] = tokens_per_step * t.steps / train_seconds;
  s["flops"] = flops;
  s["flops_full_equivalent"] = flops_full;
  s["flops_saving"] = 1.0 - flops / flops_full;
  // Against the same steps on the full model, timed by this run's own full-model steps (if it has any).
  s["time_saving_estimate"] = full_steps.empty()
                                  ? nlohmann::json(nullptr)
                                  : nlohmann::json(1.0 - train_seconds / (t.steps * median(full_steps)));
  s["flops_convention"] = kFlopsConvention;
  s["stages"] = stage_list;
  s["evaluations"] = evaluations;
  s["schedule"] = cfg_.est.schedule.empty() ? nlohmann::json(nullptr) : nlohmann::json(cfg_.est.schedule);
  s["inactive"] = cfg_.est.inactive;
  s["parameters"] = model_->layout().total;
  s["threads"] = threads_;
  s["gemm_backend"] = gemm::backend_name(gemm::current_backend());
  s["config"] = cfg_.path;
  write_text_atomic(cfg_.output.dir + "/summary.json", s.dump(2) + "\n");
  return s;
}

}  // namespace est
