#pragma once
// What every architecture shares: its parameters, gradient and compact copies in the flat layout of
// parameters.hpp, the batch, the subnetwork being trained and its active layout, the tensor-parallel share and
// the LM head's logits. An architecture (gpt2.hpp, llama.hpp) lists its tensors and buffers and writes its
// forward and backward passes; make_model (architectures.hpp) builds the one a shape names.
//
// Each forward/backward pass trains the current subnetwork (the full model unless set_subnetwork says
// otherwise): a skipped layer runs no kernel, and an active layer's GEMMs run at the reduced sizes of its
// active heads and neurons, on compact copies of their weight rows.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "est/subnetwork.hpp"
#include "model/active_layout.hpp"
#include "model/buffer_use.hpp"
#include "model/causal_attention.hpp"
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

class Model {
 public:
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelShape& shape() const { return shape_; }
  const ParameterLayout& layout() const { return layout_; }
  int batch_size() const { return B_; }
  int max_batch_size() const { return B_max_; }
  int seq_len() const { return T_; }
  AttentionKind attention() const { return attention_.kind(); }

  Buffer params() const { return params_; }
  float* param(int id, int layer = -1) const;

  // The architecture's initialisation. Values depend on the seed and on each element's place in the unsplit
  // model only, so every tensor-parallel layout starts from the same model.
  virtual void init_random(uint64_t seed) = 0;

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
  // gradient, however the batch is shared out. During the backward pass `complete(n)` is called (when given)
  // each time grads()' first n entries are final, after the kernels that write them were issued; the last call
  // has n = grads()' size.
  float forward_backward(int64_t tokens = 0, const std::function<void(int64_t)>& complete = {});
  // The last forward's logits (B*T, padded vocabulary).
  CMatF logits() const { return cmat(logits_.data(), int64_t(B_) * T_, shape_.padded_vocab_size); }

  // The residual stream after layer `layer`'s attention (`after_mlp` false) or MLP, from the last forward
  // (for a skipped layer: its input, unchanged).
  CMatF residual(int layer, bool after_mlp) const;

 protected:
  // B (sequences) and T bound the batches this rank will see.
  Model(const ModelShape& shape, int B, int T, const TensorParallel& tp, AttentionKind attention);

  // Calls f(name, use, elements, member) for each buffer every architecture holds, `member` pointing into `m`
  // (null without a model); an architecture's own list (its each_buffer) starts with these, so what it
  // allocates and what the memory plan sums are one list.
  template <class F>
  static void each_common_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T,
                                 AttentionKind attention, Model* m, const F& f) {
    const int64_t BT = int64_t(B) * T;
    using U = BufferUse;
    f("params", U::parameters, layout.total, m ? &m->params_ : nullptr);
    f("grads", U::gradients, layout.total, m ? &m->grads_ : nullptr);
    f("compact_params", U::compact_copies, layout.total, m ? &m->compact_params_ : nullptr);
    f("tokens", U::batch, BT, m ? &m->tokens_ : nullptr);
    f("targets", U::batch, BT, m ? &m->targets_ : nullptr);
    f("logits", U::logits, BT * shape.padded_vocab_size, m ? &m->logits_ : nullptr);
    f("residual2", U::activations, shape.n_layer * BT * shape.n_embd, m ? &m->residual2_ : nullptr);
    f("residual3", U::activations, shape.n_layer * BT * shape.n_embd, m ? &m->residual3_ : nullptr);
    CausalAttention::each_buffer(attention, shape.n_layer, B, layout.heads, T, m ? &m->attention_ : nullptr, f);
  }
  // Allocates what an each_buffer-style list names (compact copies only once a subnetwork needs them).
  struct Allocate {
    template <class View>
    void operator()(const char* name, BufferUse use, int64_t n, View* member) const {
      if (use != BufferUse::compact_copies) *member = View(std::string(name), size_t(n));
    }
  };
  // The bytes of an each_buffer-style list, for buffer_sizes.
  template <class EachBuffer>
  static std::vector<BufferSize> sizes_of(const EachBuffer& each) {
    std::vector<BufferSize> sizes;
    each([&](const char* name, BufferUse use, int64_t n, auto* member) {
      sizes.push_back({name, use, n * int64_t(sizeof(typename std::remove_pointer_t<decltype(member)>::value_type))});
    });
    return sizes;
  }

  // What a layer's GEMMs read of tensor `id`: the parameters, or the compact copy of the active rows.
  const float* weight(int id, int layer) const;
  float* grad(int id, int layer) const { return grads_.data() + active_->slice(id, layer).grad_offset; }
  // Layer l's slice of the residual stream after its attention (residual2_) or its MLP (residual3_).
  MatF residual_after(int64_t l, bool after_mlp) const;
  // Sums a row-parallel output (or a column-parallel input gradient) over the tensor-parallel group.
  void tp_allreduce(MatF x) const;
  // The backward pass has completed grads()' first n entries (forward_backward's `complete`).
  void gradients_complete(int64_t n) const {
    if (complete_) complete_(n);
  }
  // Each architecture's passes: the logits of the current batch, and the gradient from the dlogits that
  // forward_backward leaves in their place.
  virtual void forward_to_logits() = 0;
  virtual void backward() = 0;

  ModelShape shape_;
  ParameterLayout layout_;
  TensorParallel tp_;
  int B_max_, B_, T_;
  CausalAttention attention_;  // every layer's, and what it keeps for the backward pass
  Buffer params_, grads_, compact_params_, logits_;
  Buffer residual2_, residual3_;           // (L, BT, C): every layer's stream after attention and after the MLP
  std::vector<const float*> layer_input_;  // residual stream entering each layer (last forward)
  const float* final_residual_ = nullptr;  // and leaving the last one
  Kokkos::View<int*, MemSpace> tokens_, targets_;
  Subnetwork sub_;
  std::unique_ptr<ActiveLayout> active_;
  std::function<void(int64_t)> complete_;  // forward_backward's, for the length of the call

 private:
  // The parameters change every step, so the compact copies are refreshed before each forward pass.
  void gather_weights();
  template <class Replicated, class Sharded>
  void each_tensor(const Replicated& replicated, const Sharded& sharded) const;
  // For each tensor, the unsplit tensor's rows this rank holds (one layer's worth), on the device.
  std::vector<Kokkos::View<int*, MemSpace>> global_rows_;
};

}  // namespace est
