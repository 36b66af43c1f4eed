#include "model/causal_attention.hpp"

#include "attention_fused.hpp"

namespace est {

void CausalAttention::forward(int64_t layer, MatF atty, CMatF qkv, int B, int T, const AttentionHeads& heads) const {
  float* kept = kept_.data() + layer * layer_floats_;
  const int64_t rows = int64_t(B) * heads.q * T;
  if (kind_ == AttentionKind::fused) {
    attention_fused_forward(atty, vec(kept, rows), qkv, B, T, heads);
  } else {
    attention_forward(atty, mat(kept, rows, T), qkv, B, T, heads);
  }
}

void CausalAttention::backward(int64_t layer, MatF dqkv, CMatF datty, CMatF atty, CMatF qkv, int B, int T,
                               const AttentionHeads& heads) const {
  const float* kept = kept_.data() + layer * layer_floats_;
  const int64_t rows = int64_t(B) * heads.q * T;
  if (kind_ == AttentionKind::fused) {
    attention_fused_backward(dqkv, vec(scratch_.data(), rows), datty, atty, cvec(kept, rows), qkv, B, T, heads);
  } else {
    attention_backward(dqkv, mat(scratch_.data(), rows, T), datty, cmat(kept, rows, T), qkv, B, T, heads);
  }
}

}  // namespace est
