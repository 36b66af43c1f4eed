#pragma once
// GPT-2 (pre-LayerNorm, learned positions, tied LM head), fp32, forward and backward written out by hand
// in llm.c's structure. Non-GEMM work runs in Kokkos kernels, every matrix product through est::gemm.
#include <cstdint>

#include "parameters.hpp"
#include "shape.hpp"
#include "views.hpp"

namespace est {

class GPT2 {
 public:
  // B and T bound the batches this model will see (activations are sized for them).
  GPT2(const ModelShape& shape, int B, int T);

  const ModelShape& shape() const { return shape_; }
  const ParameterLayout& layout() const { return layout_; }
  int batch_size() const { return B_; }
  int seq_len() const { return T_; }

  Buffer params() const { return params_; }
  Buffer grads() const { return grads_; }
  // Views of tensor `id`; per-layer tensors may be narrowed to one layer.
  float* param(int id, int layer = -1) const { return slice(params_, id, layer); }
  float* grad(int id, int layer = -1) const { return slice(grads_, id, layer); }

  // GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2L), wpe N(0, 0.01),
  // zero biases, unit LayerNorm gains; padded vocabulary rows zero.
  void init_random(uint64_t seed);

  // Copies a batch of B*T inputs and targets (host memory) to the device.
  void set_batch(const int* tokens, const int* targets);
  // Mean cross-entropy of the current batch; logits are kept.
  float forward();
  // Mean cross-entropy, and the gradient of it in grads() (every entry overwritten).
  float forward_backward();

 private:
  float* slice(const Buffer& buf, int id, int layer) const;
  void forward_to_logits();
  void backward();

  ModelShape shape_;
  ParameterLayout layout_;
  int B_, T_;
  Buffer params_, grads_;
  Kokkos::View<int*, MemSpace> tokens_, targets_;

  // Activations kept for the backward pass (per layer where indexed by l).
  struct Activations {
    Buffer encoded;                 // (BT, C)
    Buffer ln1, ln1_mean, ln1_rstd;  // (L, BT, C), (L, BT)
    Buffer qkv;                     // (L, BT, 3C)
    Buffer atty;                    // (L, BT, C)
    Buffer att;                     // (L, B*NH*T, T)
    Buffer residual2;               // (L, BT, C)
    Buffer ln2, ln2_mean, ln2_rstd;
    Buffer fch, fch_gelu;           // (L, BT, 4C)
    Buffer residual3;               // (L, BT, C)
    Buffer lnf, lnf_mean, lnf_rstd;
    Buffer logits;                  // (BT, Vp); holds dlogits after forward_backward
    Buffer proj;                    // (BT, C) scratch for the attention and MLP projections
  } acts_;
  // Gradient scratch, reused by every layer.
  struct GradScratch {
    Buffer dresidual;  // (BT, C)
    Buffer dc;         // (BT, C)
    Buffer d4c;        // (BT, 4C)
    Buffer dqkv;       // (BT, 3C)
    Buffer datt;       // (B*NH*T, T)
  } scratch_;
};

}  // namespace est
