#pragma once
// GPT-2 (pre-LayerNorm, learned positions, tied LM head), fp32, forward and backward written out by hand in
// llm.c's structure. Non-GEMM work runs in Kokkos kernels, every matrix product through est::gemm.
//
// Each forward/backward pass trains the current subnetwork (the full model unless set_subnetwork says
// otherwise): a skipped layer runs no kernel, and an active layer's GEMMs run at the reduced sizes of its
// active heads and neurons, on compact copies of their weight rows.
//
// Tensor parallelism (Megatron): a rank holds its share of the heads and MLP neurons (parameters.hpp), the
// attention and MLP output projections are row-parallel with one all-reduce each after them in the forward
// pass, and the input gradients of QKV and fc (column-parallel) are all-reduced in the backward pass.
// Embeddings, LayerNorms and the LM head are replicated.
#include <cstdint>
#include <memory>
#include <vector>

#include "est/subnetwork.hpp"
#include "model/active_layout.hpp"
#include "model/parameters.hpp"
#include "model/shape.hpp"
#include "parallel/communicator.hpp"
#include "views.hpp"

namespace est {

// This rank's tensor-parallel share and the group's communicator (none: no tensor parallelism).
struct TensorParallel {
  Partition partition;
  Communicator* comm = nullptr;
};

// What a model buffer holds, for the memory plan (train/memory_plan.hpp).
enum class BufferUse { parameters, gradients, compact_copies, activations, attention_maps, logits, batch };

class GPT2 {
 public:
  struct BufferSize {
    const char* name;
    BufferUse use;
    int64_t bytes;
  };
  // Every buffer a model of this shape allocates for batches of up to B sequences of T tokens on this
  // tensor-parallel share, from the list the constructor allocates from (compact copies once a subnetwork is set).
  static std::vector<BufferSize> buffer_sizes(const ModelShape& shape, int B, int T, Partition p = {});

  // B (sequences) and T bound the batches this rank will see (activations are sized for them).
  GPT2(const ModelShape& shape, int B, int T, const TensorParallel& tp = {});

  const ModelShape& shape() const { return shape_; }
  const ParameterLayout& layout() const { return layout_; }
  int batch_size() const { return B_; }
  int max_batch_size() const { return B_max_; }
  int seq_len() const { return T_; }

  Buffer params() const { return params_; }
  float* param(int id, int layer = -1) const;

  // GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2L), wpe N(0, 0.01),
  // zero biases, unit LayerNorm gains; padded vocabulary rows zero. Values depend on the seed and on each
  // element's place in the unsplit model only, so every tensor-parallel layout starts from the same model.
  void init_random(uint64_t seed);

  // The unsplit model's parameters (ParameterLayout(shape()) order and layout), in the default memory space.
  // import_params takes this rank's share of them; export_params writes this rank's share into `global` (zeroed
  // by the caller) with the replicated tensors from tensor-parallel rank 0 only, so a sum over the group
  // assembles the whole model.
  void import_params(CVecF global);
  void export_params(VecF global) const;
  // The unsplit model's parameters on the host: a collective over the tensor-parallel group.
  std::vector<float> gather_params() const;

  // The subnetwork (this rank's share of it) the following passes train.
  void set_subnetwork(const Subnetwork& sub);
  const Subnetwork& subnetwork() const { return sub_; }
  const ActiveLayout& active() const { return *active_; }

  // The gradient of the last forward_backward: compact, as active() lays it out (for the full model, the
  // plain gradient in the parameter layout). Everything outside the subnetwork has no entry: its gradient is
  // exactly zero and never computed.
  VecF grads() const { return VecF(grads_.data(), active_->total()); }

  // Copies a batch of B*T inputs and targets (host memory) to the device; B <= the constructor's B.
  void set_batch(const int* tokens, const int* targets, int B);
  void set_batch(const int* tokens, const int* targets) { set_batch(tokens, targets, B_max_); }
  // Mean cross-entropy of the current batch; logits are kept.
  float forward();
  // The batch's summed cross-entropy divided by `tokens` (0: this batch's B*T), and its gradient in grads():
  // with tokens = the global batch's, the data-parallel ranks' results add up to the global mean and its
  // gradient, however the batch is shared out.
  float forward_backward(int64_t tokens = 0);

  // The residual stream after layer `layer`'s attention (`after_mlp` false) or MLP, from the last forward
  // (for a skipped layer: its input, unchanged).
  CMatF residual(int layer, bool after_mlp) const;

 private:
  // One layer's weights as its GEMMs see them: the parameters, or compact copies of the active rows.
  struct LayerWeights {
    const float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
    int heads, neurons;
  };
  LayerWeights weights(int layer) const;
  // One active layer's activations, at the widths of its active heads (A = heads * hs) and neurons (M).
  struct LayerActivations {
    MatF ln1, qkv, atty, att, residual2, ln2, fch, fch_gelu, residual3;
    VecF ln1_mean, ln1_rstd, ln2_mean, ln2_rstd;
  };
  LayerActivations activations(int64_t layer, const LayerWeights& w) const;
  template <class F>
  static void each_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T, GPT2* m, const F& f);
  template <class Replicated, class Sharded>
  void each_tensor(const Replicated& replicated, const Sharded& sharded) const;
  // Sums a row-parallel output (or a column-parallel input gradient) over the tensor-parallel group.
  void tp_allreduce(MatF x) const;
  // For each tensor, the unsplit tensor's rows this rank holds (one layer's worth), on the device.
  std::vector<Kokkos::View<int*, MemSpace>> global_rows_;
  float* grad(int id, int layer) const;
  void gather_weights();
  void forward_to_logits();
  void backward();

  ModelShape shape_;
  ParameterLayout layout_;
  TensorParallel tp_;
  int B_max_, B_, T_;
  Buffer params_, grads_, compact_params_;
  Kokkos::View<int*, MemSpace> tokens_, targets_;
  Subnetwork sub_;
  std::unique_ptr<ActiveLayout> active_;
  std::vector<const float*> layer_input_;  // residual stream entering each layer (last forward)
  const float* final_residual_ = nullptr;  // and leaving the last one

  // Activations kept for the backward pass, at full width; a subnetwork uses a prefix of each.
  struct Activations {
    Buffer encoded;                  // (BT, C)
    Buffer ln1, ln1_mean, ln1_rstd;  // (L, BT, C), (L, BT)
    Buffer qkv;                      // (L, BT, 3C)
    Buffer atty;                     // (L, BT, C)
    Buffer att;                      // (L, B*NH*T, T)
    Buffer residual2;                // (L, BT, C)
    Buffer ln2, ln2_mean, ln2_rstd;
    Buffer fch, fch_gelu;            // (L, BT, 4C)
    Buffer residual3;                // (L, BT, C)
    Buffer lnf, lnf_mean, lnf_rstd;
    Buffer logits;                   // (BT, Vp); holds dlogits after forward_backward
    Buffer proj;                     // (BT, C) scratch for the attention and MLP projections
  } acts_;
  // Gradient scratch, reused by every layer.
  struct GradScratch {
    Buffer dresidual;  // (BT, C)
    Buffer dbranch;    // (BT, C): a residual branch's gradient under layer scaling
    Buffer dc;         // (BT, C)
    Buffer d4c;        // (BT, 4C)
    Buffer dqkv;       // (BT, 3C)
    Buffer datt;       // (B*NH*T, T)
  } scratch_;
};

}  // namespace est
