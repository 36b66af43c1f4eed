// Llama against a naive double-precision reference (reference_llama.hpp): the full model's logits, and for
// KV-group, query-head, neuron and layer sampling the subnetwork's loss and every gradient entry against the
// dense smaller model extracted from it (central differences in double). The architecture-generic checks
// (finite differences of every tensor, loss at initialisation, overfitting) are test_model.cpp's.
#include <algorithm>
#include <cmath>
#include <functional>

#include "est/sampler.hpp"
#include "model/llama.hpp"
#include "extracted_model.hpp"
#include "reference_llama.hpp"
#include "test_util.hpp"

namespace est {
namespace {

using test::all;
using test::Batch;
using test::batch_for;
using test::Folded;
using test::init_noisy;

// 4 query heads over 2 key/value heads of size 4, 24 neurons.
ModelShape llama_shape(bool tied = false, int layers = 3) {
  ModelShape s = test::small_shape(layers, 4, 16, 43, 8);  // 43: prime to the batches' token strides
  s.padded_vocab_size = 48;
  s.arch = Arch::llama;
  s.n_kv_head = 2;
  s.mlp_hidden = 24;
  s.rope_theta = 100.0f;  // a small base turns even the short test sequences' rotations far
  s.tie_embeddings = tied;
  return s;
}

// factor * rows `keep` of a row-major (rows x cols) tensor at `offset`.
std::vector<double> rows_of(const std::vector<float>& p, int64_t offset, int64_t cols, const std::vector<int>& keep,
                            double factor = 1) {
  std::vector<double> out;
  for (int r : keep)
    for (int64_t c = 0; c < cols; ++c) out.push_back(factor * p[offset + r * cols + c]);
  return out;
}

struct Extracted {
  test::RefLlama ref;
  std::function<Folded(int id, int layer)> field;
};

// The dense smaller model a subnetwork stands for: the rows of its query heads, of the key/value heads they read
// and of its neurons, in est's compact order, with the scales folded into the output projections.
Extracted extract(const Model& m, const Subnetwork& sub) {
  const ModelShape& s = m.shape();
  const int C = s.n_embd, hs = s.head_size(), M = s.neurons(), Q = s.n_head * hs, K = s.kv_heads() * hs;
  const auto p = test::to_host(m.params());
  const auto& L = m.layout();
  Extracted e;
  test::RefLlama& r = e.ref;
  r.C = C;
  r.hs = hs;
  r.V = s.vocab_size;
  r.Vp = s.padded_vocab_size;
  r.eps = s.norm_eps;
  r.theta = s.rope_theta;
  r.wte = rows_of(p, L[L_WTE].offset, C, all(r.Vp));
  r.rmsfw = rows_of(p, L[L_RMSFW].offset, 1, all(C));
  if (!s.tie_embeddings) r.lmhead = rows_of(p, L[L_LMHEAD].offset, C, all(r.Vp));
  const double ls = sub.layer_scale;
  for (int l = 0; l < s.n_layer; ++l) {
    const LayerSelection& sel = sub.layers[l];
    test::RefLlamaLayer rl;
    rl.active = sel.active;
    std::vector<int> q_rows, kv, kv_rows, head_rows, mlp_rows;
    for (int h : sel.heads) {
      if (kv.empty() || kv.back() != h / s.group_size()) kv.push_back(h / s.group_size());
      rl.kv_of.push_back(int(kv.size()) - 1);
      for (int d = 0; d < hs; ++d) head_rows.push_back(h * hs + d);
    }
    for (int blk = 0; blk < 2; ++blk)
      for (int g : kv)
        for (int d = 0; d < hs; ++d) kv_rows.push_back(Q + blk * K + g * hs + d);
    q_rows = head_rows;
    q_rows.insert(q_rows.end(), kv_rows.begin(), kv_rows.end());
    for (int blk = 0; blk < 2; ++blk)
      for (int j : sel.neurons) mlp_rows.push_back(blk * M + j);
    rl.q_heads = int(sel.heads.size());
    rl.kv_heads = int(kv.size());
    rl.neurons = int(sel.neurons.size());
    auto at = [&](int id) { return L[id].offset + l * (L[id].size / s.n_layer); };
    rl.rms1w = rows_of(p, at(L_RMS1W), 1, all(C));
    rl.qkvw = rows_of(p, at(L_QKVW), C, q_rows);
    rl.attprojw = rows_of(p, at(L_ATTPROJW), C, head_rows, ls * sub.head_scale);
    rl.rms2w = rows_of(p, at(L_RMS2W), 1, all(C));
    rl.gateupw = rows_of(p, at(L_GATEUPW), C, mlp_rows);
    rl.downw = rows_of(p, at(L_DOWNW), C, sel.neurons, ls * sub.mlp_scale);
    r.layers.push_back(rl);
  }
  e.field = [&r, sub](int id, int l) -> Folded {
    const double ls = sub.layer_scale;
    switch (id) {
      case L_WTE: return {&r.wte, 1};
      case L_RMSFW: return {&r.rmsfw, 1};
      case L_LMHEAD: return {&r.lmhead, 1};
      case L_RMS1W: return {&r.layers[l].rms1w, 1};
      case L_QKVW: return {&r.layers[l].qkvw, 1};
      case L_ATTPROJW: return {&r.layers[l].attprojw, ls * sub.head_scale};
      case L_RMS2W: return {&r.layers[l].rms2w, 1};
      case L_GATEUPW: return {&r.layers[l].gateupw, 1};
      default: return {&r.layers[l].downw, ls * sub.mlp_scale};
    }
  };
  return e;
}

TEST(Llama, LogitsEqualTheDoublePrecisionReference) {
  for (bool tied : {false, true}) {
    const ModelShape s = llama_shape(tied);
    Llama m(s, 2, 8);
    init_noisy(m, 5);
    const Batch b = batch_for(m, 2);
    m.set_batch(b.tokens.data(), b.targets.data());
    m.forward();
    const auto got = test::to_host(m.logits());
    const auto want = extract(m, Subnetwork::full(s)).ref.logits(b.tokens, 2, 8);
    double err = 0, norm = 0;
    for (int i = 0; i < 16; ++i)
      for (int v = 0; v < s.vocab_size; ++v) {
        const double d = got[i * s.padded_vocab_size + v] - want[i * s.vocab_size + v];
        err += d * d;
        norm += want[i * s.vocab_size + v] * want[i * s.vocab_size + v];
      }
    EXPECT_LT(std::sqrt(err / norm), 1e-5) << (tied ? "tied" : "untied");
    EXPECT_GT(norm, 1.0);
  }
}

// Loss and every gradient entry of the subnetwork against the extracted model.
void expect_matches_extracted(const Subnetwork& sub, bool tied = false) {
  Llama m(llama_shape(tied), 2, 4);
  init_noisy(m, 11);
  const Batch b = batch_for(m, 3);
  m.set_subnetwork(sub);
  m.set_batch(b.tokens.data(), b.targets.data());
  const float loss = m.forward_backward();
  const auto g = test::to_host(m.grads());
  Extracted e = extract(m, sub);
  test::expect_matches_reference(m, loss, g, e.ref, e.field, b);
}

Subnetwork full_sub() { return Subnetwork::full(llama_shape()); }

TEST(Llama, FullModelEqualsTheReferenceTiedAndUntied) {
  expect_matches_extracted(full_sub(), false);
  expect_matches_extracted(full_sub(), true);
}

// Whole groups: the key/value rows of the other group are outside the subnetwork.
TEST(Llama, KvGroupsEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  sub.layers[0].heads = {0, 1};
  sub.layers[1].heads = {2, 3};
  sub.head_scale = 2.0f;
  expect_matches_extracted(sub);
}

// Single query heads: a group's key/value head runs when any of its query heads does.
TEST(Llama, QueryHeadsEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  sub.layers[0].heads = {1, 2};
  sub.layers[1].heads = {0, 1, 3};
  sub.layers[2].heads = {3};
  sub.head_scale = 2.0f;
  expect_matches_extracted(sub);
}

TEST(Llama, NeuronsEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  for (int l = 0; l < 3; ++l) {
    sub.layers[l].neurons.clear();
    for (int j = l; j < 24; j += 2 + l) sub.layers[l].neurons.push_back(j);
  }
  sub.mlp_scale = 2.0f;
  expect_matches_extracted(sub);
}

TEST(Llama, LayersWithEverythingSampledEqualTheExtractedDenseModel) {
  Subnetwork sub = full_sub();
  sub.layers[1] = LayerSelection{false, {}, {}};
  sub.layers[0].heads = {2, 3};
  sub.layers[2].heads = {0};
  sub.layers[0].neurons = {0, 3, 5, 8, 13, 21};
  sub.layers[2].neurons = {1, 2, 4, 7, 11, 16, 22, 23};
  sub.head_scale = 2.0f;
  sub.mlp_scale = 3.0f;
  sub.layer_scale = 1.5f;
  expect_matches_extracted(sub);
}

// A KV-group draw keeps whole groups, and its compact key/value rows shrink with it; a query-head draw keeps
// heads one by one and needs the key/value heads of every group it touches.
TEST(Llama, KvGroupDrawsKeepWholeGroupsAndShrinkTheKeyValueRows) {
  ModelShape s = llama_shape(false, 1);
  s.n_head = 8;
  s.n_embd = 32;
  StageSpec stage;
  stage.p_heads = 0.5;
  const SubnetworkSampler groups(s, 3, LayerScaling::none, 1, HeadUnit::kv_group);
  const SubnetworkSampler queries(s, 3, LayerScaling::none, 1, HeadUnit::query);
  Llama m(s, 1, 4);
  int touched_groups = 0;
  for (int step = 0; step < 20; ++step) {
    const std::vector<int> g = groups.sample(stage, step).layers[0].heads;
    ASSERT_EQ(g.size(), 4u);
    EXPECT_EQ(g[0] % 4, 0);
    EXPECT_EQ(g[1], g[0] + 1);
    EXPECT_EQ(g[3], g[0] + 3);  // one of the two groups of four query heads
    const Subnetwork q = queries.sample(stage, step);
    ASSERT_EQ(q.layers[0].heads.size(), 4u);
    touched_groups += (q.layers[0].heads.front() / 4 != q.layers[0].heads.back() / 4);
    m.set_subnetwork(groups.sample(stage, step));
    EXPECT_EQ(m.active().slice(L_QKVW, 0).kept, (4 + 2 * 1) * 4);  // q of 4 heads, k and v of their one group
  }
  EXPECT_GT(touched_groups, 0);
  EXPECT_EQ(groups.heads_for(0.5), 4);
  EXPECT_EQ(queries.heads_for(0.5), 4);
}

}  // namespace
}  // namespace est
