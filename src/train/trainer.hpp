#pragma once
// The training loop: data → model → loss → gradients → clipping → AdamW, with periodic validation, a progress
// line and <output.dir>/summary.json at the end.
#include <memory>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/dataloader.hpp"
#include "model/gpt2.hpp"
#include "optim/lr_schedule.hpp"
#include "optim/optimizer.hpp"

namespace est {

class Trainer {
 public:
  // Checks every input (data shards, model file) and builds the model; writes nothing.
  explicit Trainer(const Config& cfg);
  // Trains, writes the output directory and returns the summary.
  nlohmann::json run();
  const std::string& output_dir() const { return cfg_.output.dir; }

 private:
  float validation_loss();

  Config cfg_;
  int threads_;
  std::unique_ptr<GPT2> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<DataLoader> train_data_, val_data_;
  LrSchedule schedule_;
  std::vector<int> inputs_, targets_;
};

}  // namespace est
