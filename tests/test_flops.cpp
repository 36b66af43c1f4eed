// FLOPs accounting: per-step counts against arithmetic written out by hand, and the whole-run saving of the
// shipped schedules against the value their files document.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "est/flops.hpp"

namespace est {
namespace {

ModelShape shape(int n_layer, int n_head, int n_embd, int padded_vocab) {
  ModelShape s;
  s.n_layer = n_layer;
  s.n_head = n_head;
  s.n_embd = n_embd;
  s.vocab_size = padded_vocab;
  s.padded_vocab_size = padded_vocab;
  return s;
}

std::vector<int> range(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(Flops, StepMatchesHandArithmeticOnATinyModel) {
  // 2 layers, 2 heads of size 4, C = 8, 32 MLP neurons, Vp = 128, T = 16, 32 tokens. Layer 0 runs head 1 and
  // 10 neurons; layer 1 is skipped.
  const ModelShape s = shape(2, 2, 8, 128);
  Subnetwork sub = Subnetwork::full(s);
  sub.layers[0].heads = {1};
  sub.layers[0].neurons = range(10);
  sub.layers[1] = LayerSelection{false, {}, {}};
  // Per token forward: LM head 2*8*128 = 2048; layer 0 with h*d = 4, m = 10: QKV 2*8*3*4 = 192,
  // projection 2*4*8 = 64, MLP 2*8*10 + 2*10*8 = 320, attention core 2*16*4 = 128; total 2048 + 704 = 2752.
  // Full layer (h*d = 8, m = 32): 384 + 128 + 1024 + 256 = 1792; full forward 2048 + 2*1792 = 5632.
  const StepFlops f = step_flops(s, 16, 32, sub);
  EXPECT_DOUBLE_EQ(f.executed, 3.0 * 32 * 2752);
  EXPECT_DOUBLE_EQ(f.full, 3.0 * 32 * 5632);

  const StepFlops g = step_flops(s, 16, 32, std::vector<bool>{true, false}, 1, 10);
  EXPECT_DOUBLE_EQ(g.executed, f.executed);
  EXPECT_DOUBLE_EQ(g.full, f.full);
}

TEST(Flops, StepMatchesHandArithmeticOnGpt2Small) {
  // GPT-2 124M, T = 1024, 4 sequences; 6 of 12 layers with 6 of 12 heads (h*d = 384) and 1536 of 3072 neurons.
  const ModelShape s = shape(12, 12, 768, 50304);
  Subnetwork sub = Subnetwork::full(s);
  for (int l = 0; l < 12; ++l) {
    sub.layers[l].active = l % 2 == 0;
    sub.layers[l].heads = l % 2 == 0 ? std::vector<int>{0, 2, 4, 6, 8, 10} : std::vector<int>{};
    sub.layers[l].neurons = l % 2 == 0 ? range(1536) : std::vector<int>{};
  }
  const double lm_head = 2.0 * 768 * 50304;                                                   // 77,266,944
  const double half_layer = 2.0 * 768 * 3 * 384 + 2.0 * 384 * 768 + 4.0 * 768 * 1536 + 2.0 * 1024 * 384;  // 7,864,320
  const double full_layer = 2.0 * 768 * 3 * 768 + 2.0 * 768 * 768 + 4.0 * 768 * 3072 + 2.0 * 1024 * 768;  // 15,728,640
  EXPECT_DOUBLE_EQ(lm_head + 6 * half_layer, 124452864.0);
  EXPECT_DOUBLE_EQ(lm_head + 12 * full_layer, 266010624.0);
  const StepFlops f = step_flops(s, 1024, 4096, sub);
  EXPECT_DOUBLE_EQ(f.executed, 3.0 * 4096 * 124452864.0);
  EXPECT_DOUBLE_EQ(f.full, 3.0 * 4096 * 266010624.0);
  // Counting the full attention square instead gives est-method.md §5's 284.8 MFLOP per token (284.88).
  EXPECT_NEAR(f.full / (3.0 * 4096) + 12 * 2.0 * 1024 * 768, 284.8e6, 0.1e6);
}

TEST(Flops, FullModelExecutesTheFullCount) {
  for (const ModelShape& s : {shape(2, 2, 8, 128), shape(12, 12, 768, 50304)}) {
    const StepFlops f = step_flops(s, 64, 640, Subnetwork::full(s));
    EXPECT_GT(f.full, 0);
    EXPECT_EQ(f.executed, f.full);
  }
}

// The number on the file's `# expected_saving_<model>: X` line.
double documented_saving(const std::string& path, const std::string& model = "gpt2_124m") {
  std::ifstream in(path);
  const std::string tag = "# expected_saving_" + model + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(tag, 0) == 0) return std::stod(line.substr(tag.size()));
  }
  ADD_FAILURE() << path << " has no '" << tag << "' line";
  return -1;
}

TEST(Flops, Gpt2EstScheduleSavesTheDocumentedFraction) {
  const std::string path = EST_SOURCE_DIR "/schedules/gpt2-est.yaml";
  const ModelShape s = shape(12, 12, 768, 50304);
  const SubnetworkSampler sampler(s, 1337, LayerScaling::none);
  const ScheduleFlops f = schedule_flops(s, 1024, 4 * 1024, load_schedule(path), sampler, 10000);
  EXPECT_NEAR(f.saving(), documented_saving(path), 0.01);
  ASSERT_EQ(f.stages.size(), 3u);
  EXPECT_EQ(f.stages[0].first_step, 0);
  EXPECT_EQ(f.stages[0].end_step, 2000);
  EXPECT_EQ(f.stages[1].first_step, 2000);
  EXPECT_EQ(f.stages[1].end_step, 6600);
  EXPECT_EQ(f.stages[2].end_step, 10000);
  // Stage ratios: (LM head + 6 half layers) / full and (LM head + 12 half layers) / full.
  EXPECT_NEAR(f.stages[0].flops / f.stages[0].flops_full, 124452864.0 / 266010624.0, 1e-12);
  EXPECT_NEAR(f.stages[1].flops / f.stages[1].flops_full, 171638784.0 / 266010624.0, 1e-12);
  EXPECT_EQ(f.stages[2].flops, f.stages[2].flops_full);
  EXPECT_DOUBLE_EQ(f.flops, f.stages[0].flops + f.stages[1].flops + f.stages[2].flops);
}

ModelShape tinyllama() {
  ModelShape s = shape(22, 32, 2048, 32000);
  s.arch = Arch::llama;
  s.n_kv_head = 4;
  s.mlp_hidden = 5632;
  s.tie_embeddings = false;
  return s;
}

// GQA's k and v count the key/value heads the query heads read; SwiGLU counts three GEMMs.
TEST(Flops, LlamaLayerCountsItsKeyValueHeadsAndThreeMlpGemms) {
  const ModelShape s = tinyllama();
  // Per token forward, T = 2048, d = 64: QKV 2*2048*(32+2*4)*64 = 10,485,760; projection 2*2048*2048 =
  // 8,388,608; MLP 6*2048*5632 = 69,206,016; attention core 2*2048*2048 = 8,388,608: 96,468,992 per layer.
  // LM head 2*2048*32000 = 131,072,000.
  const double full = 131072000.0 + 22 * 96468992.0;
  EXPECT_DOUBLE_EQ(step_flops(s, 2048, 1, Subnetwork::full(s)).full, 3 * full);
  // Two whole KV groups (16 query heads over 2 KV heads) and half the neurons: half of every GEMM.
  Subnetwork groups = Subnetwork::full(s);
  for (LayerSelection& l : groups.layers) {
    l.heads = range(16);
    l.neurons = range(2816);
  }
  EXPECT_DOUBLE_EQ(step_flops(s, 2048, 1, groups).executed, 3 * (131072000.0 + 22 * 96468992.0 / 2));
  // The same 16 query heads drawn one by one from all four groups read all four KV heads.
  Subnetwork queries = groups;
  for (LayerSelection& l : queries.layers) {
    l.heads.clear();
    for (int g = 0; g < 4; ++g)
      for (int h = 0; h < 4; ++h) l.heads.push_back(8 * g + h);
  }
  const double more_kv = 2.0 * 2048 * 2 * (4 - 2) * 64;  // k and v of two more KV heads
  EXPECT_DOUBLE_EQ(step_flops(s, 2048, 1, queries).executed, step_flops(s, 2048, 1, groups).executed + 3 * 22 * more_kv);
}

TEST(Flops, TinyLlamaEstScheduleSavesTheDocumentedFraction) {
  const std::string path = EST_SOURCE_DIR "/schedules/tinyllama-est.yaml";
  const ModelShape s = tinyllama();
  const SubnetworkSampler sampler(s, 1337, LayerScaling::none, 4);
  const ScheduleFlops f = schedule_flops(s, 2048, 8 * 2048, load_schedule(path), sampler, 10000);
  EXPECT_NEAR(f.saving(), documented_saving(path, "tinyllama_1_1b"), 0.01);
  EXPECT_NEAR(f.saving(), 0.25, 0.005);
  // Stage 2 runs every layer on half the KV groups and neurons: (LM head + 22 half layers) / full.
  EXPECT_NEAR(f.stages[1].flops / f.stages[1].flops_full, (131072000.0 + 11 * 96468992.0) / (131072000.0 + 22 * 96468992.0),
              1e-12);
  EXPECT_EQ(f.stages[1].heads, 16);
  EXPECT_DOUBLE_EQ(f.stages[1].kv_heads, 2);
}

TEST(Flops, FullScheduleSavesNothing) {
  const ModelShape s = shape(12, 12, 768, 50304);
  const SubnetworkSampler sampler(s, 1, LayerScaling::none);
  const ScheduleFlops f =
      schedule_flops(s, 1024, 4096, load_schedule(EST_SOURCE_DIR "/schedules/full.yaml"), sampler, 1000);
  EXPECT_GT(f.flops_full, 0);
  EXPECT_EQ(f.saving(), 0.0);
  EXPECT_EQ(schedule_flops(s, 1024, 4096, full_schedule(), sampler, 1000).saving(), 0.0);
}

TEST(Flops, BernoulliScheduleCountsEveryDrawnStep) {
  const ModelShape s = shape(6, 4, 16, 128);
  const SubnetworkSampler sampler(s, 5, LayerScaling::none);
  Schedule sched = full_schedule();
  sched.stages.insert(sched.stages.begin(), StageSpec{});
  sched.stages[0].until_step = 30;
  sched.stages[0].p_heads = 0.5;
  sched.stages[0].p_layers = 0.5;
  sched.stages[0].layer_sampling = LayerSampling::bernoulli;
  const ScheduleFlops f = schedule_flops(s, 32, 64, sched, sampler, 50);
  double executed = 0, full = 0, stage1_layers = 0;
  for (int64_t step = 0; step < 50; ++step) {
    const Subnetwork sub = sampler.sample(sched.stages[sched.stage_at(step, 50)], step);
    const StepFlops sf = step_flops(s, 32, 64, sub);
    executed += sf.executed;
    full += sf.full;
    if (step < 30)
      for (const LayerSelection& l : sub.layers) stage1_layers += l.active;
  }
  EXPECT_DOUBLE_EQ(f.flops, executed);
  EXPECT_DOUBLE_EQ(f.flops_full, full);
  EXPECT_GT(f.saving(), 0);
  // What the simulator prices a stage's step with: the drawn layers' mean and the per-layer counts.
  ASSERT_EQ(f.stages.size(), 2u);
  EXPECT_DOUBLE_EQ(f.stages[0].active_layers, stage1_layers / 30);
  EXPECT_EQ(f.stages[0].heads, 2);
  EXPECT_EQ(f.stages[0].neurons, 64);
  EXPECT_DOUBLE_EQ(f.stages[1].active_layers, 6);
}

}  // namespace
}  // namespace est
