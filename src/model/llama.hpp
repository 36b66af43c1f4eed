#pragma once
// Llama (the TinyLlama family): pre-RMSNorm, no biases, rotary positions (RoPE, rotate-half pairing) on the
// queries and keys, grouped-query attention (n_head query heads reading n_kv_head key/value heads), a SwiGLU
// MLP, and an LM head of its own unless tied. fp32, forward and backward written out as GPT-2's are.
//
// Tensor parallelism (Megatron): a rank holds whole key/value groups with their query heads (n_kv_head divisible
// by the tensor-parallel size) and its share of the MLP neurons, gate and up by rows of their (out, in) matrices
// (column-parallel), the attention and down projections by rows of their (in, out) ones (row-parallel); one
// all-reduce after each row-parallel product, one on each column-parallel input gradient. Embedding, norms
// and LM head are replicated.
#include <cstdint>
#include <vector>

#include "attention.hpp"
#include "model/model.hpp"

namespace est {

// Llama's tensors, in this order; the LM head only when it is not tied to the embedding.
enum LlamaParamId { L_WTE, L_RMS1W, L_QKVW, L_ATTPROJW, L_RMS2W, L_GATEUPW, L_DOWNW, L_RMSFW, L_LMHEAD };

class Llama : public Model {
 public:
  // This rank's share: qkvw holds the q rows of its query heads, then the k and v rows of its key/value heads;
  // gateupw the gate rows of its neurons, then their up rows.
  static std::vector<ParamSpec> parameters(const ModelShape& shape, const ParameterLayout& share);
  static std::vector<BufferSize> buffer_sizes(const ModelShape& shape, int B, int T, Partition p = {},
                                              AttentionKind attention = AttentionKind::materialized);

  Llama(const ModelShape& shape, int B, int T, const TensorParallel& tp = {},
        AttentionKind attention = AttentionKind::materialized);

  // N(0, 0.02) matrices and embedding, the two output projections scaled by 1/sqrt(2L) as GPT-2's, unit norm
  // gains; padded vocabulary rows zero.
  void init_random(uint64_t seed) override;

 private:
  struct LayerWeights {
    const float *rms1w, *qkvw, *attprojw, *rms2w, *gateupw, *downw;
    AttentionHeads heads;  // the active query heads and the key/value heads they read
    int neurons;
  };
  LayerWeights weights(int layer) const;
  struct LayerActivations {
    MatF ln1, qkv, atty, residual2, ln2, fch, fch_act, residual3;
    VecF ln1_rstd, ln2_rstd;
  };
  LayerActivations activations(int64_t layer, const LayerWeights& w) const;
  template <class F>
  static void each_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T, Llama* m, const F& f);
  int head_id() const { return shape_.tie_embeddings ? L_WTE : L_LMHEAD; }
  void forward_to_logits() override;
  void backward() override;
  void attention_block_backward(int64_t l, const LayerWeights& w, const LayerActivations& x, MatF dbranch);
  void mlp_block_backward(int64_t l, const LayerWeights& w, const LayerActivations& x, MatF dbranch);

  struct Activations {
    Buffer encoded;             // (BT, C)
    Buffer ln1, ln1_rstd;       // (L, BT, C), (L, BT)
    Buffer qkv;                 // (L, BT, Q + 2K): queries and keys after RoPE
    Buffer atty;                // (L, BT, Q)
    Buffer ln2, ln2_rstd;
    Buffer fch;                 // (L, BT, 2M): gate | up
    Buffer fch_act;             // (L, BT, M): silu(gate) * up
    Buffer lnf, lnf_rstd;
    Buffer proj;                // (BT, C) scratch for the two output projections
    Buffer rope_cos, rope_sin;  // (T, hs/2)
  } acts_;
  struct GradScratch {
    Buffer dresidual, dbranch, dc;  // (BT, C)
    Buffer dact;                    // (BT, M)
    Buffer dfch;                    // (BT, 2M)
    Buffer dqkv;                    // (BT, Q + 2K)
  } scratch_;
};

}  // namespace est
