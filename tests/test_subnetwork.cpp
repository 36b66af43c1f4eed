// Subnetwork training: a subnetwork equals the dense smaller model extracted from it; the full subnetwork is
// the plain model bit for bit; sampled block outputs are unbiased; parameters outside the subnetwork are left
// exactly as they were (est.inactive: skip) or stepped with a zero gradient (zero_grad).
#include <algorithm>
#include <cmath>
#include <functional>

#include "est/sampler.hpp"
#include "model/architectures.hpp"
#include "model/gpt2.hpp"
#include "optim/optimizer.hpp"
#include "extracted_model.hpp"
#include "reference_gpt2.hpp"
#include "test_util.hpp"
#include "train/step.hpp"

namespace est {
namespace {

using test::all;
using test::Batch;
using test::batch_for;
using test::Folded;
using test::init_noisy;

ModelShape small_shape(int layers = 3) { return test::small_shape(layers, 4, 16); }

// factor * the (keep_rows x keep_cols) submatrix of a row-major (rows x cols) tensor at `offset`.
std::vector<double> pick(const std::vector<float>& full, int64_t offset, int64_t cols,
                         const std::vector<int>& keep_rows, const std::vector<int>& keep_cols, double factor) {
  std::vector<double> out;
  for (int r : keep_rows)
    for (int c : keep_cols) out.push_back(factor * full[offset + r * cols + c]);
  return out;
}

struct Extracted {
  test::RefModel ref;
  std::function<Folded(int id, int layer)> field;
};

// The dense smaller model a subnetwork stands for: active rows/columns copied, scales folded into weights.
Extracted extract(const GPT2& m, const Subnetwork& sub) {
  const ModelShape& s = m.shape();
  const int C = s.n_embd, hs = s.head_size();
  const auto p = test::to_host(m.params());
  const auto& L = m.layout();
  Extracted e;
  test::RefModel& r = e.ref;
  r.C = C;
  r.hs = hs;
  r.V = s.vocab_size;
  r.Vp = s.padded_vocab_size;
  r.wte = pick(p, L[WTE].offset, C, all(r.Vp), all(C), 1);
  r.wpe = pick(p, L[WPE].offset, C, all(s.max_seq_len), all(C), 1);
  r.lnfw = pick(p, L[LNFW].offset, 1, all(C), {0}, 1);
  r.lnfb = pick(p, L[LNFB].offset, 1, all(C), {0}, 1);
  for (int l = 0; l < s.n_layer; ++l) {
    const LayerSelection& sel = sub.layers[l];
    test::RefLayer rl;
    rl.active = sel.active;
    rl.heads = int(sel.heads.size());
    rl.neurons = int(sel.neurons.size());
    std::vector<int> units, qkv_rows;
    for (int h : sel.heads)
      for (int d = 0; d < hs; ++d) units.push_back(h * hs + d);
    for (int blk = 0; blk < 3; ++blk)
      for (int u : units) qkv_rows.push_back(blk * C + u);
    const double ls = sub.layer_scale;
    auto at = [&](int id) { return L[id].offset + l * (L[id].size / s.n_layer); };
    rl.ln1w = pick(p, at(LN1W), 1, all(C), {0}, 1);
    rl.ln1b = pick(p, at(LN1B), 1, all(C), {0}, 1);
    rl.qkvw = pick(p, at(QKVW), C, qkv_rows, all(C), 1);
    rl.qkvb = pick(p, at(QKVB), 1, qkv_rows, {0}, 1);
    rl.attprojw = pick(p, at(ATTPROJW), C, units, all(C), ls * sub.head_scale);
    rl.attprojb = pick(p, at(ATTPROJB), 1, all(C), {0}, ls);
    rl.ln2w = pick(p, at(LN2W), 1, all(C), {0}, 1);
    rl.ln2b = pick(p, at(LN2B), 1, all(C), {0}, 1);
    rl.fcw = pick(p, at(FCW), C, sel.neurons, all(C), 1);
    rl.fcb = pick(p, at(FCB), 1, sel.neurons, {0}, 1);
    rl.fcprojw = pick(p, at(FCPROJW), C, sel.neurons, all(C), ls * sub.mlp_scale);
    rl.fcprojb = pick(p, at(FCPROJB), 1, all(C), {0}, ls);
    r.layers.push_back(rl);
  }
  e.field = [&r, sub](int id, int l) -> Folded {
    const double ls = sub.layer_scale;
    switch (id) {
      case WTE: return {&r.wte, 1};
      case WPE: return {&r.wpe, 1};
      case LNFW: return {&r.lnfw, 1};
      case LNFB: return {&r.lnfb, 1};
      case LN1W: return {&r.layers[l].ln1w, 1};
      case LN1B: return {&r.layers[l].ln1b, 1};
      case QKVW: return {&r.layers[l].qkvw, 1};
      case QKVB: return {&r.layers[l].qkvb, 1};
      case ATTPROJW: return {&r.layers[l].attprojw, ls * sub.head_scale};
      case ATTPROJB: return {&r.layers[l].attprojb, ls};
      case LN2W: return {&r.layers[l].ln2w, 1};
      case LN2B: return {&r.layers[l].ln2b, 1};
      case FCW: return {&r.layers[l].fcw, 1};
      case FCB: return {&r.layers[l].fcb, 1};
      case FCPROJW: return {&r.layers[l].fcprojw, ls * sub.mlp_scale};
      default: return {&r.layers[l].fcprojb, ls};
    }
  };
  return e;
}

// Loss and every gradient entry of the subnetwork against the extracted model (central differences in double).
void expect_matches_extracted(const Subnetwork& sub) {
  GPT2 m(small_shape(), 2, 4);
  init_noisy(m, 11);
  const Batch b = batch_for(m, 3);
  m.set_subnetwork(sub);
  m.set_batch(b.tokens.data(), b.targets.data());
  const float loss = m.forward_backward();
  const auto g = test::to_host(m.grads());
  Extracted e = extract(m, sub);
  test::expect_matches_reference(m, loss, g, e.ref, e.field, b);
}

Subnetwork full_sub() { return Subnetwork::full(small_shape()); }

TEST(Subnetwork, HeadsEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  sub.layers[0].heads = {0, 2};
  sub.layers[1].heads = {1, 3};
  sub.layers[2].heads = {3};
  sub.head_scale = 2.0f;
  expect_matches_extracted(sub);
}

TEST(Subnetwork, NeuronsEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  for (int l = 0; l < 3; ++l) {
    sub.layers[l].neurons.clear();
    for (int j = l; j < 64; j += 2 + l) sub.layers[l].neurons.push_back(j);
  }
  sub.mlp_scale = 2.0f;
  expect_matches_extracted(sub);
}

TEST(Subnetwork, LayersEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  sub.layers[1] = LayerSelection{false, {}, {}};
  expect_matches_extracted(sub);
}

TEST(Subnetwork, AllThreeWithLayerScalingEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  sub.layers[0] = LayerSelection{false, {}, {}};
  sub.layers[1].heads = {0, 3};
  sub.layers[2].heads = {1, 2};
  sub.layers[1].neurons = {1, 4, 5, 9, 16, 17, 30, 31, 32, 40, 41, 50, 60, 61, 62, 63};
  sub.layers[2].neurons = {0, 2, 3, 6, 7, 8, 10, 11, 20, 21, 22, 23, 33, 34, 35, 36};
  sub.head_scale = 2.0f;
  sub.mlp_scale = 4.0f;
  sub.layer_scale = 1.5f;
  expect_matches_extracted(sub);
}

TEST(Subnetwork, FullScheduleReproducesThePlainModelBitForBit) {
  const ModelShape s = small_shape();
  GPT2 plain(s, 2, 4), sampled(s, 2, 4);
  plain.init_random(5);
  sampled.init_random(5);
  AdamW opt_plain(plain.layout(), {}), opt_sampled(sampled.layout(), {});
  const SubnetworkSampler sampler(s, 9, LayerScaling::inverse);
  const StageSpec full_stage;
  for (int step = 0; step < 3; ++step) {
    const Batch b = batch_for(plain, step);
    plain.set_batch(b.tokens.data(), b.targets.data());
    sampled.set_batch(b.tokens.data(), b.targets.data());
    sampled.set_subnetwork(sampler.sample(full_stage, step));
    const StepStats a = train_step(plain, opt_plain, 1e-2f, 1.0);
    const StepStats c = train_step(sampled, opt_sampled, 1e-2f, 1.0);
    EXPECT_EQ(a.loss, c.loss);
    EXPECT_EQ(a.grad_norm, c.grad_norm);
  }
  EXPECT_EQ(test::to_host(plain.params()), test::to_host(sampled.params()));
  EXPECT_EQ(test::to_host(opt_plain.m()), test::to_host(opt_sampled.m()));
  EXPECT_EQ(test::to_host(opt_plain.v()), test::to_host(opt_sampled.v()));
}

// Distance of the mean over draws of a sampled block's output from the full block's, relative to the size of
// the full block's contribution to the residual stream.
double unbiasedness_error(bool mlp, bool keep_scale, const ModelShape& s = small_shape(1),
                          HeadUnit unit = HeadUnit::kv_group) {
  const auto owned = make_model(s, 2, 4);
  Model& m = *owned;
  init_noisy(m, 21);
  const Batch b = batch_for(m, 1);
  m.set_batch(b.tokens.data(), b.targets.data());
  auto residual_after = [&](const Subnetwork& sub, bool after_mlp) {
    m.set_subnetwork(sub);
    m.forward();
    return test::to_double(test::to_host(m.residual(0, after_mlp)));
  };
  const Subnetwork full = Subnetwork::full(s);
  Subnetwork skipped = full;
  skipped.layers[0] = LayerSelection{false, {}, {}};
  // The block's input: the attention residual for the MLP (heads stay full), the embeddings for attention.
  const auto before = mlp ? residual_after(full, false) : residual_after(skipped, false);
  const auto after = residual_after(full, mlp);

  StageSpec stage;
  (mlp ? stage.p_mlp : stage.p_heads) = 0.5;
  const SubnetworkSampler sampler(s, 3, LayerScaling::none, 1, unit);
  const int draws = 3000;
  std::vector<double> mean(after.size(), 0.0);
  for (int step = 0; step < draws; ++step) {
    Subnetwork sub = sampler.sample(stage, step);
    if (!keep_scale) sub.head_scale = sub.mlp_scale = 1.0f;
    const auto out = residual_after(sub, mlp);
    for (size_t i = 0; i < mean.size(); ++i) mean[i] += out[i] / draws;
  }
  double err = 0, norm = 0;
  for (size_t i = 0; i < mean.size(); ++i) {
    err += (mean[i] - after[i]) * (mean[i] - after[i]);
    norm += (after[i] - before[i]) * (after[i] - before[i]);
  }
  return std::sqrt(err / norm);
}

TEST(Subnetwork, SampledAttentionIsUnbiasedOnlyWithInverseScaling) {
  EXPECT_LT(unbiasedness_error(false, true), 0.03);
  EXPECT_GT(unbiasedness_error(false, false), 0.2);
}

TEST(Subnetwork, SampledMlpIsUnbiasedOnlyWithInverseScaling) {
  EXPECT_LT(unbiasedness_error(true, true), 0.03);
  EXPECT_GT(unbiasedness_error(true, false), 0.2);
}

// A Llama of 8 query heads over 4 KV heads: KV-group and query-head draws of attention, and SwiGLU neurons.
ModelShape llama_layer() {
  ModelShape s = test::small_shape(1, 8, 32, 128);
  s.arch = Arch::llama;
  s.n_kv_head = 4;
  s.mlp_hidden = 48;
  s.tie_embeddings = false;
  return s;
}

TEST(Subnetwork, LlamaSampledBlocksAreUnbiasedOnlyWithInverseScaling) {
  for (HeadUnit unit : {HeadUnit::kv_group, HeadUnit::query}) {
    EXPECT_LT(unbiasedness_error(false, true, llama_layer(), unit), 0.03) << int(unit);
    EXPECT_GT(unbiasedness_error(false, false, llama_layer(), unit), 0.2) << int(unit);
  }
  EXPECT_LT(unbiasedness_error(true, true, llama_layer()), 0.03);
  EXPECT_GT(unbiasedness_error(true, false, llama_layer()), 0.2);
}

// Which parameter entries the current subnetwork trains, read off its active layout.
std::vector<bool> trained_entries(const GPT2& m) {
  std::vector<bool> trained(m.layout().total, false);
  for (const ActiveSlice& s : m.active().slices()) {
    if (s.kind == SliceKind::none) continue;
    std::vector<int> map;
    if (s.kind != SliceKind::dense) {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s.map);
      map.assign(h.data(), h.data() + h.extent(0));
    }
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t c = 0; c < s.cols; ++c) {
        const bool in = s.kind == SliceKind::dense || map[s.kind == SliceKind::rows ? r : c] >= 0;
        trained[s.offset + r * s.cols + c] = in;
      }
  }
  return trained;
}

Subnetwork mixed_subnetwork() {
  Subnetwork sub = full_sub();
  sub.layers[1] = LayerSelection{false, {}, {}};
  sub.layers[0].heads = {1, 2};
  sub.layers[2].neurons = {3, 5, 8, 13, 21, 34, 55};
  sub.head_scale = 2.0f;
  sub.mlp_scale = 64.0f / 7;
  return sub;
}

// Entries outside the subnetwork after a step: untouched (skip) or stepped with g = 0 (zero_grad).
void check_inactive_semantics(bool zero_grad) {
  GPT2 m(small_shape(), 2, 4);
  init_noisy(m, 31);
  AdamWConfig cfg;
  cfg.zero_grad_inactive = zero_grad;
  AdamW opt(m.layout(), cfg);
  const Batch b = batch_for(m, 2);
  m.set_batch(b.tokens.data(), b.targets.data());
  train_step(m, opt, 1e-2f, 0.0);  // a full step first, so every moment is nonzero
  m.set_subnetwork(mixed_subnetwork());
  const auto p0 = test::to_host(m.params()), m0 = test::to_host(opt.m()), v0 = test::to_host(opt.v());
  train_step(m, opt, 1e-2f, 0.0);
  const auto p1 = test::to_host(m.params()), m1 = test::to_host(opt.m()), v1 = test::to_host(opt.v());
  const auto trained = trained_entries(m);
  const float b1 = AdamWConfig{}.beta1;
  int64_t outside = 0, trained_moved = 0, trained_total = 0;
  for (size_t i = 0; i < trained.size(); ++i) {
    if (trained[i]) {
      ++trained_total;
      trained_moved += m1[i] != m0[i];
      continue;
    }
    ++outside;
    if (zero_grad) {
      ASSERT_EQ(m1[i], b1 * m0[i]) << i;  // a zero gradient only decays the first moment
      ASSERT_LT(v1[i], v0[i] + 1e-30f) << i;
    } else {
      ASSERT_EQ(p1[i], p0[i]) << i;
      ASSERT_EQ(m1[i], m0[i]) << i;
      ASSERT_EQ(v1[i], v0[i]) << i;
    }
  }
  EXPECT_GT(outside, int64_t(trained.size()) / 4);
  // All but the few with a zero gradient (positions beyond T in wpe).
  EXPECT_GT(trained_moved, trained_total * 98 / 100);
}

TEST(Subnetwork, SkipLeavesExactlyTheInactiveParametersUntouched) { check_inactive_semantics(false); }

TEST(Subnetwork, ZeroGradStepsInactiveParametersWithAZeroGradient) { check_inactive_semantics(true); }

TEST(Subnetwork, GradientIsAsLargeAsTheSubnetwork) {
  GPT2 m(small_shape(), 2, 4);
  const int64_t full = m.grads().extent(0);
  EXPECT_EQ(full, m.layout().total);
  m.set_subnetwork(mixed_subnetwork());
  int64_t expected = 0;
  for (bool t : trained_entries(m)) expected += t;
  EXPECT_EQ(int64_t(m.grads().extent(0)), expected);
  EXPECT_LT(expected, full);
}

}  // namespace
}  // namespace est
