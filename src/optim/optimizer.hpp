#pragma once
// AdamW over the model's flat parameter buffer, driven by the subnetwork's active layout: each slice gets its
// tensor's weight decay, and parameters outside the subnetwork are left untouched (est.inactive: skip, the
// default) or stepped with a zero gradient (zero_grad).
#include "adamw.hpp"
#include "model/model.hpp"
#include "views.hpp"

namespace est {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  bool decay_embeddings = false;
  bool zero_grad_inactive = false;
};

class AdamW {
 public:
  AdamW(const ParameterLayout& layout, const AdamWConfig& cfg);

  // One update of model.params() from model.grads() at learning rate lr; gradients are multiplied by
  // grad_scale first (clipping). Bias correction counts optimizer steps (t), whether or not a slice trained.
  void step(Model& model, float lr, float grad_scale);

  int steps_taken() const { return t_; }
  // Resuming from a checkpoint: the bias correction continues from its step count.
  void restore_steps_taken(int t) { t_ = t; }
  Buffer m() const { return m_; }
  Buffer v() const { return v_; }

 private:
  float decay_for(const ParamSpec& p) const;

  const ParameterLayout& layout_;
  AdamWConfig cfg_;
  Buffer m_, v_;
  int t_ = 0;
};

}  // namespace est
