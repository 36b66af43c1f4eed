#pragma once
// GPT-2 (pre-LayerNorm, learned positions, tied LM head), fp32, forward and backward written out by hand in
// llm.c's structure. Non-GEMM work runs in Kokkos kernels, every matrix product through est::gemm.
//
// Tensor parallelism (Megatron): a rank holds its share of the heads and MLP neurons (parameters.hpp), the
// attention and MLP output projections are row-parallel with one all-reduce each after them in the forward
// pass, and the input gradients of QKV and fc (column-parallel) are all-reduced in the backward pass.
// Embeddings, LayerNorms and the LM head are replicated.
#include <cstdint>
#include <vector>

#include "model/model.hpp"

namespace est {

class GPT2 : public Model {
 public:
  // The 16 tensors (ParamId order) of this rank's share.
  static std::vector<ParamSpec> parameters(const ModelShape& shape, const ParameterLayout& share);
  // Every buffer a model of this shape allocates for batches of up to B sequences of T tokens on this
  // tensor-parallel share, from the list the constructor allocates from (compact copies once a subnetwork is set).
  static std::vector<BufferSize> buffer_sizes(const ModelShape& shape, int B, int T, Partition p = {},
                                              AttentionKind attention = AttentionKind::materialized);

  GPT2(const ModelShape& shape, int B, int T, const TensorParallel& tp = {},
       AttentionKind attention = AttentionKind::materialized);

  // GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2L), wpe N(0, 0.01),
  // zero biases, unit LayerNorm gains; padded vocabulary rows zero.
  void init_random(uint64_t seed) override;

 private:
  // One layer's weights as its GEMMs see them: the parameters, or compact copies of the active rows.
  struct LayerWeights {
    const float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
    int heads, neurons;
  };
  LayerWeights weights(int layer) const;
  // One active layer's activations, at the widths of its active heads (A = heads * hs) and neurons (M).
  struct LayerActivations {
    MatF ln1, qkv, atty, residual2, ln2, fch, fch_gelu, residual3;
    VecF ln1_mean, ln1_rstd, ln2_mean, ln2_rstd;
  };
  LayerActivations activations(int64_t layer, const LayerWeights& w) const;
  template <class F>
  static void each_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T, GPT2* m, const F& f);
  void forward_to_logits() override;
  void backward() override;

  // Activations kept for the backward pass, at full width; a subnetwork uses a prefix of each.
  struct Activations {
    Buffer encoded;                  // (BT, C)
    Buffer ln1, ln1_mean, ln1_rstd;  // (L, BT, C), (L, BT)
    Buffer qkv;                      // (L, BT, 3C)
    Buffer atty;                     // (L, BT, C)
    Buffer ln2, ln2_mean, ln2_rstd;
    Buffer fch, fch_gelu;            // (L, BT, 4C)
    Buffer lnf, lnf_mean, lnf_rstd;
    Buffer proj;                     // (BT, C) scratch for the attention and MLP projections
  } acts_;
  // Gradient scratch, reused by every layer.
  struct GradScratch {
    Buffer dresidual;  // (BT, C)
    Buffer dbranch;    // (BT, C): a residual branch's gradient under layer scaling
    Buffer dc;         // (BT, C)
    Buffer d4c;        // (BT, 4C)
    Buffer dqkv;       // (BT, 3C)
  } scratch_;
};

}  // namespace est
