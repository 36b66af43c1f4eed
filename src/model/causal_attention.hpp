#pragma once
// The one place a model's layers choose how causal attention runs (AttentionKind): materialized (attention.hpp,
// the softmax maps kept per layer) or fused (attention_fused.hpp, a log-sum-exp per row kept and the maps
// recomputed in the backward pass). It holds what each layer keeps for the backward pass and the backward's
// scratch, for up to B sequences of T tokens and H query heads per layer.
#include <cstdint>

#include "attention.hpp"
#include "model/attention_kind.hpp"
#include "model/buffer_use.hpp"
#include "views.hpp"

namespace est {

class CausalAttention {
 public:
  // Calls f(name, use, elements, member) for each buffer of L layers, `member` pointing into `a` (null without
  // one): the model allocates from this list and the memory plan sums it.
  template <class F>
  static void each_buffer(AttentionKind kind, int64_t L, int64_t B, int64_t H, int64_t T, CausalAttention* a,
                          const F& f) {
    const int64_t rows = B * H * T;
    Buffer* kept = a ? &a->kept_ : nullptr;
    Buffer* scratch = a ? &a->scratch_ : nullptr;
    if (kind == AttentionKind::fused) {
      f("attention_lse", BufferUse::attention_statistics, L * rows, kept);
      f("attention_rowdot", BufferUse::attention_statistics, rows, scratch);
    } else {
      f("att", BufferUse::attention_maps, L * rows * T, kept);
      f("datt", BufferUse::attention_maps, rows * T, scratch);
    }
  }

  CausalAttention(AttentionKind kind, int B, int T, int H)
      : kind_(kind), layer_floats_(int64_t(B) * H * T * (kind == AttentionKind::fused ? 1 : T)) {}
  AttentionKind kind() const { return kind_; }

  // Layer `layer`'s attention: atty from qkv (attention.hpp's layouts), keeping what its backward needs.
  void forward(int64_t layer, MatF atty, CMatF qkv, int B, int T, const AttentionHeads& heads) const;
  // dqkv is overwritten, from the output's gradient datty and the layer's atty and qkv of the forward pass.
  void backward(int64_t layer, MatF dqkv, CMatF datty, CMatF atty, CMatF qkv, int B, int T,
                const AttentionHeads& heads) const;

 private:
  AttentionKind kind_;
  int64_t layer_floats_;  // kept per layer
  Buffer kept_;           // materialized: the maps (L, B*H*T, T); fused: the log-sum-exps (L, B*H*T)
  Buffer scratch_;        // materialized: the maps' gradient (B*H*T, T); fused: <dO, O> per row (B*H*T)
};

}  // namespace est
