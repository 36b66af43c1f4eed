#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "gemm.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/llmc_model.hpp"
#include "train/flops.hpp"
#include "train/progress.hpp"
#include "train/runtime.hpp"
#include "train/step.hpp"

namespace est {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

Trainer::Trainer(const Config& cfg) : cfg_(cfg) {
  threads_ = configure_runtime(cfg_.runtime);
  if (cfg_.data.train.empty()) throw InputError(cfg_.path, "data.train", "required: a path or glob of token shards");
  ModelShape shape = cfg_.shape();
  const int B = cfg_.train.batch_size, T = cfg_.model.seq_len;
  train_data_ = std::make_unique<DataLoader>(cfg_.data.train, B, T, shape.vocab_size, "data.train");
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
  const auto& t = cfg_.train;
  optimizer_ = std::make_unique<AdamW>(
      model_->layout(), AdamWConfig{float(t.beta1), float(t.beta2), float(t.eps), float(t.weight_decay), t.decay_embeddings});
  schedule_ = LrSchedule{float(t.lr), float(t.min_lr), t.warmup, t.steps};
  inputs_.resize(size_t(B) * T);
  targets_.resize(size_t(B) * T);
}

float Trainer::validation_loss() {
  val_data_->reset();
  double sum = 0.0;
  for (int i = 0; i < cfg_.train.eval_batches; ++i) {
    val_data_->next_batch(inputs_.data(), targets_.data());
    model_->set_batch(inputs_.data(), targets_.data());
    sum += model_->forward();
  }
  return static_cast<float>(sum / cfg_.train.eval_batches);
}

nlohmann::json Trainer::run() {
  const auto& t = cfg_.train;
  const ModelShape& shape = model_->shape();
  const long long tokens_per_step = static_cast<long long>(t.batch_size) * cfg_.model.seq_len;
  const double flops_per_step = training_flops_per_token(shape, cfg_.model.seq_len) * tokens_per_step;
  std::filesystem::create_directories(cfg_.output.dir);
  write_text_atomic(cfg_.output.dir + "/config.yaml", cfg_.yaml_text + "\n");

  std::printf("est: GPT-2 L=%d H=%d C=%d T=%d V=%d (%.2fM parameters), B=%d, %d steps, GEMM %s on %d threads\n",
              shape.n_layer, shape.n_head, shape.n_embd, cfg_.model.seq_len, shape.vocab_size,
              model_->layout().total / 1e6, t.batch_size, t.steps, gemm::backend_name(gemm::current_backend()),
              threads_);
  Progress progress(t.steps, t.log_every);
  float loss = NAN, val_loss = NAN;
  const auto t0 = Clock::now();
  double train_seconds = 0.0;
  for (int step = 0; step < t.steps; ++step) {
    const auto ts = Clock::now();
    train_data_->next_batch(inputs_.data(), targets_.data());
    model_->set_batch(inputs_.data(), targets_.data());
    loss = train_step(*model_, *optimizer_, schedule_.at(step), t.grad_clip).loss;
    const double dt = seconds_since(ts);
    train_seconds += dt;
    progress.step(step + 1, loss, dt, tokens_per_step);
    const bool last = step + 1 == t.steps;
    if (val_data_ && (last || (t.eval_every > 0 && (step + 1) % t.eval_every == 0))) {
      val_loss = validation_loss();
      char line[96];
      std::snprintf(line, sizeof line, "step %d: val loss %.4f", step + 1, val_loss);
      progress.message(line);
    }
  }
  progress.finish();
  const double wall = seconds_since(t0);
  if (cfg_.output.save_model) save_llmc_model(cfg_.output.dir + "/model.bin", *model_);

  nlohmann::json s;
  s["final_train_loss"] = loss;
  s["final_val_loss"] = std::isfinite(val_loss) ? nlohmann::json(val_loss) : nlohmann::json(nullptr);
  s["steps"] = t.steps;
  s["tokens"] = tokens_per_step * t.steps;
  s["wall_seconds"] = wall;
  s["train_seconds"] = train_seconds;
  s["tokens_per_second"] = tokens_per_step * t.steps / train_seconds;
  s["flops"] = flops_per_step * t.steps;
  s["flops_per_step"] = flops_per_step;
  s["flops_formula"] = kFlopsFormula;
  s["parameters"] = model_->layout().total;
  s["threads"] = threads_;
  s["gemm_backend"] = gemm::backend_name(gemm::current_backend());
  s["config"] = cfg_.path;
  write_text_atomic(cfg_.output.dir + "/summary.json", s.dump(2) + "\n");
  return s;
}

}  // namespace est
