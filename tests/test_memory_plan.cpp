// The memory plan: its model items are the model's own buffers, they scale as the layout and the batch say,
// and a plan that does not fit ends every rank with one error naming the largest item and its keys.
#include <gtest/gtest.h>

#include <string>

#include "bytes_text.hpp"
#include "collective_error.hpp"
#include "model/gpt2.hpp"
#include "train/memory_plan.hpp"

namespace est {
namespace {

Config config(const std::string& extra = "") {
  return parse_config("model: {n_layer: 2, n_head: 4, n_embd: 64, seq_len: 32, vocab_size: 256}\n"
                      "train: {batch_size: 4, steps: 10}\n" + extra,
                      "test.yaml");
}

int64_t item(const MemoryPlan& p, const std::string& name) {
  for (const MemoryItem& i : p.items)
    if (i.name == name) return i.bytes;
  ADD_FAILURE() << "no item " << name;
  return -1;
}

MemoryPlan plan_of(const Config& cfg, int tp = 1, int batch = 4) {
  return plan_memory(cfg, cfg.shape(), RankLayout{tp, 1, batch});
}

TEST(MemoryPlan, ModelItemsAreTheModelsOwnBuffers) {
  const Config cfg = config();
  const MemoryPlan p = plan_of(cfg);
  int64_t activations = 0;
  for (const auto& b : GPT2::buffer_sizes(cfg.shape(), 4, 32))
    if (b.use == BufferUse::activations) activations += b.bytes;
  const int64_t params = ParameterLayout(cfg.shape()).total * 4;
  EXPECT_EQ(item(p, "parameters"), params);
  EXPECT_EQ(item(p, "gradients"), params);
  EXPECT_EQ(item(p, "AdamW moments"), 2 * params);
  EXPECT_EQ(item(p, "activations"), activations);
  EXPECT_EQ(item(p, "compact copies"), 0);  // the full model every step
  EXPECT_EQ(item(p, "logits"), 4 * 32 * 256 * 4);
  EXPECT_EQ(p.total(), p.device_bytes() + item(p, "host staging (checkpoints, model file)") +
                           item(p, "runtime (libraries, MPI, Kokkos)"));
  EXPECT_GT(item(p, "runtime (libraries, MPI, Kokkos)"), 0);
}

TEST(MemoryPlan, ASampledScheduleNeedsCompactCopies) {
  const Config cfg = config("est: {schedule: " EST_SOURCE_DIR "/schedules/gpt2-est.yaml}\n");
  EXPECT_EQ(item(plan_of(cfg), "compact copies"), item(plan_of(cfg), "parameters"));
}

// bf16 products hold bf16 copies of their operands, up to the largest A and the largest B: with a vocabulary
// wider than the MLP, the LM head's input gradient, (B*T, Vp) by (Vp, C).
TEST(MemoryPlan, Bf16HoldsTheLargestProductsOperandsInBf16) {
  const std::string wide = "model: {n_layer: 2, n_head: 4, n_embd: 64, seq_len: 32, vocab_size: 1024}\n";
  const Config fp32 = parse_config(wide, "test.yaml");
  const Config bf16 = parse_config(wide + "runtime: {precision: bf16}\n", "test.yaml");
  EXPECT_EQ(item(plan_of(fp32), "bf16 GEMM operands"), 0);
  EXPECT_EQ(item(plan_of(bf16), "bf16 GEMM operands"), (4 * 32 * 1024 + 1024 * 64) * 2);
  EXPECT_EQ(item(plan_of(bf16, 1, 8), "bf16 GEMM operands"), (8 * 32 * 1024 + 1024 * 64) * 2);
}

TEST(MemoryPlan, ActivationsGrowWithTheBatchAndAttentionMapsWithTheSquareOfTheSequence) {
  const Config cfg = config();
  EXPECT_EQ(item(plan_of(cfg, 1, 8), "activations"), 2 * item(plan_of(cfg, 1, 4), "activations"));
  const Config t64 = parse_config("model: {n_layer: 2, n_head: 4, n_embd: 64, seq_len: 64, vocab_size: 256}\n"
                                  "train: {batch_size: 4, steps: 10}\n", "test.yaml");
  EXPECT_EQ(item(plan_of(t64), "attention maps"), 4 * item(plan_of(cfg), "attention maps"));
}

TEST(MemoryPlan, TensorParallelismSplitsHeadsAndNeuronsOnly) {
  const Config cfg = config();
  const MemoryPlan one = plan_of(cfg), two = plan_of(cfg, 2);
  EXPECT_EQ(item(two, "attention maps"), item(one, "attention maps") / 2);
  EXPECT_EQ(item(two, "logits"), item(one, "logits"));  // the LM head is replicated
  EXPECT_EQ(item(two, "parameters"), ParameterLayout(cfg.shape(), Partition{0, 2}).total * 4);
  EXPECT_EQ(item(one, "communication buffers"), 0);
  EXPECT_EQ(item(two, "communication buffers"), 4 * 32 * 64 * 4);  // one (B*T, C) all-reduce
}

TEST(MemoryPlan, WhatDoesNotFitEndsTheRunNamingTheLargestItemAndItsKeys) {
  const Config small = config();
  EXPECT_NO_THROW(require_fits(plan_of(small), MPI_COMM_WORLD));
  const Config huge = parse_config("model: {n_layer: 8, n_head: 64, n_embd: 512, seq_len: 16384, max_seq_len: 16384, "
                                   "vocab_size: 256}\ntrain: {batch_size: 8, steps: 10}\n", "huge.yaml");
  try {
    require_fits(plan_of(huge, 1, 8), MPI_COMM_WORLD);
    FAIL() << "a plan of terabytes fitted";
  } catch (const CollectiveError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.status(), 2);
    EXPECT_EQ(what.rfind("huge.yaml: does not fit in memory: it needs ", 0), 0u) << what;
    EXPECT_NE(what.find("the largest item is attention maps, "), std::string::npos) << what;
    EXPECT_NE(what.find("shrink it with model.seq_len, train.batch_size, parallel.tp or model.attention"),
              std::string::npos)
        << what;
  }
}

// Fused attention keeps a log-sum-exp per row (b, head, t) and layer, and one backward's row dots, where the
// materialized one keeps T x T maps; the rest of the plan is the same.
TEST(MemoryPlan, FusedAttentionKeepsRowStatisticsInsteadOfMaps) {
  const Config cfg = config();
  const Config fused = parse_config("model: {n_layer: 2, n_head: 4, n_embd: 64, seq_len: 32, vocab_size: 256, "
                                    "attention: fused}\ntrain: {batch_size: 4, steps: 10}\n", "test.yaml");
  const MemoryPlan maps = plan_of(cfg), stats = plan_of(fused);
  const int64_t rows = 4 * 4 * 32, layers_and_backward = 2 + 1;  // B * heads * T
  EXPECT_EQ(item(maps, "attention maps"), layers_and_backward * rows * 32 * 4);
  EXPECT_EQ(item(stats, "attention statistics"), layers_and_backward * rows * 4);
  EXPECT_EQ(maps.device_bytes() - item(maps, "attention maps"),
            stats.device_bytes() - item(stats, "attention statistics"));
  for (const MemoryItem& i : stats.items) {
    EXPECT_NE(i.name, "attention maps");
    if (i.name == "attention statistics") {
      EXPECT_NE(i.note.find(format_bytes(double(item(maps, "attention maps")))), std::string::npos) << i.note;
    }
  }
  EXPECT_NE(format_memory_plan(stats).find("attention statistics"), std::string::npos);
}

}  // namespace
}  // namespace est
