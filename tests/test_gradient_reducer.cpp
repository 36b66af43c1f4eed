// The data-parallel gradient sum's two halves on one rank: the backward pass says when each front of the compact
// gradient is final (and it stays so), and the reducer starts a bucket exactly when the pass has completed it.
// test_parallel.cpp runs the sums over real ranks, overlapped against blocking.
#include <algorithm>
#include <vector>

#include "est/sampler.hpp"
#include "extracted_model.hpp"
#include "model/architectures.hpp"
#include "parallel/gradient_reducer.hpp"
#include "test_util.hpp"

namespace est {
namespace {

// The backward pass's completion calls, each with the gradient's front as it was at that moment.
struct Front {
  int64_t n;
  std::vector<float> values;
};

std::vector<Front> fronts_of_one_pass(Model& m, const Subnetwork& sub) {
  m.set_subnetwork(sub);
  const test::Batch b = test::batch_for(m, 3);
  m.set_batch(b.tokens.data(), b.targets.data());
  std::vector<Front> fronts;
  m.forward_backward(0, [&](int64_t n) {
    Kokkos::fence();
    fronts.push_back({n, test::to_host(Kokkos::subview(m.grads(), std::make_pair(int64_t(0), n)))});
  });
  return fronts;
}

// Every front the pass announced still holds, at the end, what it held when announced; the fronts grow to the
// whole gradient; the layers are announced last to first.
void expect_fronts_final(Model& m, const Subnetwork& sub, const std::string& what) {
  const std::vector<Front> fronts = fronts_of_one_pass(m, sub);
  const std::vector<float> g = test::to_host(m.grads());
  ASSERT_GE(fronts.size(), 2u) << what;
  EXPECT_EQ(fronts.back().n, int64_t(g.size())) << what;
  for (size_t i = 0; i < fronts.size(); ++i) {
    if (i > 0) {
      EXPECT_GE(fronts[i].n, fronts[i - 1].n) << what;
    }
    EXPECT_TRUE(std::equal(fronts[i].values.begin(), fronts[i].values.end(), g.begin()))
        << what << ": the first " << fronts[i].n << " entries changed after the pass called them final";
  }
  // One call before the layers, one after each active layer, one at the end.
  EXPECT_EQ(int(fronts.size()), sub.active_layers() + 2) << what;
  EXPECT_LT(fronts.front().n, fronts[fronts.size() - 2].n) << what;
}

ModelShape shape_of(Arch arch, bool tied) {
  ModelShape s = test::small_shape(4, 4, 16, 43, 8);
  s.padded_vocab_size = 48;
  if (arch == Arch::llama) {
    s.arch = Arch::llama;
    s.n_kv_head = 2;
    s.mlp_hidden = 24;
    s.tie_embeddings = tied;
  }
  return s;
}

TEST(GradientOrder, EachFrontTheBackwardPassCompletesStaysFinal) {
  for (const auto& [arch, tied] : {std::pair{Arch::gpt2, true}, {Arch::llama, false}, {Arch::llama, true}}) {
    const ModelShape s = shape_of(arch, tied);
    const auto m = make_model(s, 2, 4);
    test::init_noisy(*m, 5);
    const std::string name = std::string(arch_name(arch)) + (tied ? " tied" : "");
    expect_fronts_final(*m, Subnetwork::full(s), name + ", full model");
    StageSpec stage1;
    stage1.p_heads = stage1.p_mlp = stage1.p_layers = 0.5;
    const SubnetworkSampler sampler(s, 9, LayerScaling::none);
    for (int step = 0; step < 3; ++step) expect_fronts_final(*m, sampler.sample(stage1, step), name + ", stage 1");
  }
}

TEST(GradientOrder, TheLastLayerComesFirstAndTheEmbeddingsLast) {
  const ModelShape s = shape_of(Arch::gpt2, true);
  const auto m = make_model(s, 2, 4);
  const ActiveLayout& a = m->active();
  EXPECT_EQ(a.slice(LNFW, -1).grad_offset, 0);
  EXPECT_EQ(a.slice(LN1W, s.n_layer - 1).grad_offset, a.ready_before_layers());
  for (int l = s.n_layer - 1; l > 0; --l) EXPECT_EQ(a.ready_after_layer(l), a.slice(LN1W, l - 1).grad_offset);
  EXPECT_EQ(a.slice(WTE, -1).grad_offset, a.ready_after_layer(0));
  EXPECT_EQ(a.slice(WPE, -1).grad_offset + a.slice(WPE, -1).grad_size(), a.total());
}

// A channel that records the sums it is asked for.
class RecordingChannel : public AsyncAllreduce {
 public:
  explicit RecordingChannel(bool overlaps) : overlaps_(overlaps) {}
  void start(float* data, int64_t n) override {
    started.push_back({data, n});
    stats_.bytes += n * int64_t(sizeof(float));
  }
  void wait_all() override { ++waits; }
  void sum_now(float* data, int64_t n) override {
    start(data, n);
    ++waits;
  }
  bool overlaps() const override { return overlaps_; }
  std::vector<std::pair<float*, int64_t>> started;
  int waits = 0;

 private:
  bool overlaps_;
};

TEST(GradientReducer, StartsABucketOnceTheBackwardPassHasCompletedIt) {
  std::vector<float> g(2500);
  RecordingChannel channel(true);
  GradientReducer r(channel, {4000.0 / (1 << 20), true});  // 1000 floats per bucket
  ASSERT_EQ(r.bucket_entries(), 1000);
  r.begin(g.data(), 2500);
  r.complete(999);
  EXPECT_TRUE(channel.started.empty());
  r.complete(1000);
  ASSERT_EQ(channel.started.size(), 1u);
  r.complete(2499);  // the second bucket, not the partial third
  ASSERT_EQ(channel.started.size(), 2u);
  EXPECT_EQ(channel.started[1].first, g.data() + 1000);
  EXPECT_EQ(channel.waits, 0);
  const ReductionStats stats = r.finish();
  ASSERT_EQ(channel.started.size(), 3u);
  EXPECT_EQ(channel.started[2], std::make_pair(g.data() + 2000, int64_t(500)));
  EXPECT_EQ(channel.waits, 1);
  EXPECT_EQ(stats.buckets, 3);
  EXPECT_EQ(stats.bytes, 2500 * 4);
}

TEST(GradientReducer, BlockingStartsTheSameBucketsAfterThePass) {
  std::vector<float> g(2500);
  for (const bool channel_overlaps : {true, false}) {
    RecordingChannel overlapped(true), blocking(channel_overlaps);
    GradientReducer a(overlapped, {4000.0 / (1 << 20), true}), b(blocking, {4000.0 / (1 << 20), !channel_overlaps});
    EXPECT_FALSE(b.overlapping());
    for (GradientReducer* r : {&a, &b}) {
      r->begin(g.data(), 2500);
      for (int64_t n : {0, 1200, 2100, 2500}) r->complete(n);
    }
    EXPECT_EQ(overlapped.started.size(), 3u);  // the partial last bucket too, once the pass reached the end
    EXPECT_TRUE(blocking.started.empty());
    a.finish();
    b.finish();
    EXPECT_EQ(overlapped.started, blocking.started);
    EXPECT_EQ(overlapped.waits, 1);
    EXPECT_EQ(blocking.waits, 3);  // each bucket's sum run on its own
  }
}

TEST(GradientReducer, ZeroMegabytesIsOneBucket) {
  std::vector<float> g(100);
  RecordingChannel channel(true);
  GradientReducer r(channel, {0.0, true});
  r.begin(g.data(), 100);
  r.complete(99);
  EXPECT_TRUE(channel.started.empty());
  r.complete(100);
  EXPECT_EQ(channel.started, (std::vector<std::pair<float*, int64_t>>{{g.data(), 100}}));
  EXPECT_EQ(r.finish().buckets, 1);
}

}  // namespace
}  // namespace est
