// The whole model, for each architecture: finite-difference gradients for every parameter tensor, loss at initialisation,
// overfitting one batch, the backward pass overwriting every gradient entry, and training steps that repeat bit
// for bit on a given number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include "est/sampler.hpp"
#include "model/architectures.hpp"
#include "optim/optimizer.hpp"
#include "test_util.hpp"
#include "train/step.hpp"

namespace est {
namespace {

// A Llama of `heads` query heads over half as many key/value heads, its MLP of 1.5 n_embd neurons.
ModelShape as_arch(ModelShape s, Arch arch) {
  if (arch != Arch::llama) return s;
  s.arch = Arch::llama;
  s.n_kv_head = s.n_head / 2;
  s.mlp_hidden = 3 * s.n_embd / 2;
  s.tie_embeddings = false;
  return s;
}

ModelShape tiny_shape(Arch arch) {
  ModelShape s;
  s.max_seq_len = 8;
  s.vocab_size = 13;
  s.padded_vocab_size = 16;
  s.n_layer = 2;
  s.n_head = arch == Arch::llama ? 4 : 2;
  s.n_embd = arch == Arch::llama ? 16 : 8;
  return as_arch(s, arch);
}

class ModelTest : public ::testing::TestWithParam<Arch> {};

void set_tokens(Model& m, unsigned seed) {
  const int BT = m.batch_size() * m.seq_len(), V = m.shape().vocab_size;
  std::vector<int> in(BT), tg(BT);
  for (int i = 0; i < BT; ++i) {
    in[i] = int((i * 7 + seed) % V);
    tg[i] = int((i * 5 + 3 * seed + 1) % V);
  }
  m.set_batch(in.data(), tg.data());
}

void set_param(Model& m, int64_t i, float v) { Kokkos::deep_copy(Kokkos::subview(m.params(), i), v); }

// The full model's gradient at its parameters' places (the compact gradient is in the backward pass's order).
std::vector<float> gradient_by_parameter(const Model& m) {
  const auto g = test::to_host(m.grads());
  std::vector<float> out(size_t(m.layout().total), 0.0f);
  for (const ActiveSlice& s : m.active().slices()) {
    EXPECT_EQ(s.kind, SliceKind::dense);
    std::copy_n(g.begin() + s.grad_offset, s.grad_size(), out.begin() + s.offset);
  }
  return out;
}

TEST_P(ModelTest, FiniteDifferenceGradientForEveryParameterTensor) {
  const ModelShape s = tiny_shape(GetParam());
  const auto owned = make_model(s, 2, 4);
  Model& m = *owned;
  m.init_random(7);
  // Larger weights than GPT-2's init make every path carry gradient worth measuring.
  auto p = test::to_host(m.params());
  auto noise = test::randn(p.size(), 3, 0.3f);
  for (size_t i = 0; i < p.size(); ++i) p[i] += noise[i];
  const auto& L = m.layout();
  for (const ParamSpec& spec : L.specs)  // the padded vocabulary rows of the embedding and LM head
    if (!spec.per_layer && spec.shape[0] == s.padded_vocab_size)
      for (int64_t i = spec.offset + int64_t(s.vocab_size) * s.n_embd; i < spec.offset + spec.size; ++i) p[i] = 0.0f;
  Kokkos::deep_copy(m.params(), Kokkos::View<const float*, Kokkos::HostSpace, Unmanaged>(p.data(), p.size()));
  set_tokens(m, 1);
  m.forward_backward();
  const auto g = gradient_by_parameter(m);

  const float h = 1e-2f;
  for (int id = 0; id < L.count(); ++id) {
    const ParamSpec& spec = L[id];
    // The entries with the largest gradients, where the finite difference is far above fp32 noise.
    std::vector<int64_t> idx(spec.size);
    std::iota(idx.begin(), idx.end(), spec.offset);
    std::partial_sort(idx.begin(), idx.begin() + std::min<int64_t>(4, spec.size), idx.end(),
                      [&](int64_t a, int64_t b) { return std::abs(g[a]) > std::abs(g[b]); });
    idx.resize(std::min<int64_t>(4, spec.size));
    for (int64_t i : idx) {
      set_param(m, i, p[i] + h);
      const double up = m.forward();
      set_param(m, i, p[i] - h);
      const double down = m.forward();
      set_param(m, i, p[i]);
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(g[i], fd, 2e-3 + 2e-2 * std::abs(fd)) << spec.name << " entry " << i - spec.offset;
    }
    EXPECT_GT(std::abs(g[idx[0]]), 1e-3) << spec.name << " carries no gradient";
  }
}

TEST_P(ModelTest, LossAtInitialisationIsLogVocab) {
  ModelShape s = tiny_shape(Arch::gpt2);
  s.vocab_size = 256;
  s.padded_vocab_size = 256;
  s.n_embd = 32;
  s.n_head = 4;
  s.max_seq_len = 16;
  const auto owned = make_model(as_arch(s, GetParam()), 4, 16);
  Model& m = *owned;
  m.init_random(1);
  set_tokens(m, 2);
  EXPECT_NEAR(m.forward(), std::log(256.0), 0.05);
}

TEST_P(ModelTest, ForwardBackwardOverwritesEveryGradientAndAgreesWithForward) {
  const auto owned = make_model(tiny_shape(GetParam()), 2, 4);
  Model& m = *owned;
  m.init_random(3);
  set_tokens(m, 4);
  Kokkos::deep_copy(m.grads(), NAN);
  const float fwd = m.forward();
  EXPECT_EQ(m.forward_backward(), fwd);
  const auto g = test::to_host(m.grads());
  EXPECT_TRUE(std::all_of(g.begin(), g.end(), [](float x) { return std::isfinite(x); }));
}

TEST_P(ModelTest, TinyModelOverfitsOneBatch) {
  const auto owned = make_model(tiny_shape(GetParam()), 2, 8);
  Model& m = *owned;
  m.init_random(5);
  set_tokens(m, 6);
  AdamW opt(m.layout(), AdamWConfig{0.9f, 0.95f, 1e-8f, 0.0f, false});
  const float first = m.forward();
  float loss = first;
  for (int i = 0; i < 300; ++i) loss = train_step(m, opt, 1e-2f, 1.0).loss;
  EXPECT_GT(first, 2.0f);
  EXPECT_LT(loss, 0.05f);
}

// Steps of the full model and of sampled subnetworks, twice from the same start: every kernel and GEMM must give
// the same bits on the same threads (OMP_NUM_THREADS; CI runs this at 1 and 2), or a resumed run would not
// continue the interrupted one exactly. Rows and columns are many times the thread count, so every parallel
// loop and reduction is split between threads.
std::vector<float> params_after_steps(const ModelShape& s) {
  const auto owned = make_model(s, 4, 32);
  Model& m = *owned;
  m.init_random(11);
  AdamW opt(m.layout(), AdamWConfig{0.9f, 0.95f, 1e-8f, 0.1f, false});
  const SubnetworkSampler sampler(s, 5, LayerScaling::none);
  StageSpec sampled;
  sampled.p_heads = sampled.p_mlp = 0.5;
  sampled.p_layers = 0.5;
  for (int step = 0; step < 4; ++step) {
    m.set_subnetwork(sampler.sample(step % 2 ? sampled : StageSpec{}, step));
    set_tokens(m, unsigned(step));
    train_step(m, opt, 1e-3f, 1.0);
  }
  return test::to_host(m.params());
}

TEST_P(ModelTest, TrainingStepsRepeatBitForBit) {
  ModelShape s = tiny_shape(Arch::gpt2);
  s.vocab_size = s.padded_vocab_size = 256;
  s.n_layer = 4;
  s.n_head = 4;
  s.n_embd = 64;
  s.max_seq_len = 32;
  s = as_arch(s, GetParam());
  const std::vector<float> first = params_after_steps(s), second = params_after_steps(s);
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);
}

// The loss and gradient of a model with the given attention at `sub`, from the same parameters and batch.
std::pair<float, std::vector<float>> loss_and_gradient(const ModelShape& s, AttentionKind attention,
                                                      const Subnetwork& sub) {
  const auto owned = make_model(s, 2, 20, {}, attention);
  Model& m = *owned;
  EXPECT_EQ(m.attention(), attention);
  m.init_random(7);
  m.set_subnetwork(sub);
  set_tokens(m, 3);
  const float loss = m.forward_backward();
  return {loss, test::to_host(m.grads())};
}

// Fused attention in place of the materialized one: the same loss and gradient, for the full model and for a
// subnetwork of sampled heads (for Llama, single query heads of a group) with a skipped layer. T spans two blocks.
TEST_P(ModelTest, FusedAttentionEqualsMaterialized) {
  ModelShape s = tiny_shape(Arch::gpt2);
  s.n_layer = 3;
  s.n_head = 4;
  s.n_embd = 32;
  s.max_seq_len = 20;
  s = as_arch(s, GetParam());
  Subnetwork sampled = Subnetwork::full(s);
  sampled.layers[0].heads = {1, 2};
  sampled.layers[1] = LayerSelection{false, {}, {}};
  sampled.layers[2].heads = {0, 1, 3};
  sampled.head_scale = 2.0f;
  for (const Subnetwork& sub : {Subnetwork::full(s), sampled}) {
    const auto [loss, grad] = loss_and_gradient(s, AttentionKind::materialized, sub);
    const auto [fused_loss, fused_grad] = loss_and_gradient(s, AttentionKind::fused, sub);
    EXPECT_NEAR(fused_loss, loss, 1e-5 * std::abs(loss));
    float largest = 0.0f;
    for (const float g : grad) largest = std::max(largest, std::abs(g));
    test::expect_close(fused_grad, test::to_double(grad), 1e-5 * largest, 1e-4, "gradient");
  }
}

INSTANTIATE_TEST_SUITE_P(Arch, ModelTest, ::testing::Values(Arch::gpt2, Arch::llama),
                         [](const ::testing::TestParamInfo<Arch>& info) { return std::string(arch_name(info.param)); });

}  // namespace
}  // namespace est
