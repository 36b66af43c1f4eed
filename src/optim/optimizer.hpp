#pragma once
// AdamW over the model's flat parameter buffer, one launch per tensor so each gets its weight decay.
#include "adamw.hpp"
#include "model/parameters.hpp"
#include "views.hpp"

namespace est {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  bool decay_embeddings = false;
};

class AdamW {
 public:
  AdamW(const ParameterLayout& layout, const AdamWConfig& cfg);

  // One update with learning rate lr; gradients are multiplied by grad_scale first (clipping).
  void step(Buffer params, Buffer grads, float lr, float grad_scale);

  int steps_taken() const { return t_; }
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
