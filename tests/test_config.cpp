// The config parser: defaults, overrides, and one clear error (file + key) for every kind of bad input.
#include <cstdio>
#include <fstream>
#include <string>

#include "config/config.hpp"
#include "input_error.hpp"
#include "test_util.hpp"

namespace est {
namespace {

std::string write_temp(const std::string& text) {
  char name[] = "/tmp/est_config_XXXXXX.yaml";
  const int fd = mkstemps(name, 5);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

struct TempConfig {
  std::string path;
  explicit TempConfig(const std::string& text) : path(write_temp(text)) {}
  ~TempConfig() { std::remove(path.c_str()); }
};

// Loads and expects an InputError naming `file` (as a prefix: a line number may follow) and `key`.
void expect_error(const std::string& text, const std::vector<std::string>& overrides, const std::string& key,
                  bool from_override = false) {
  TempConfig c(text);
  try {
    load_config(c.path, overrides);
    ADD_FAILURE() << "accepted bad input for " << key;
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_EQ(e.file().rfind(from_override ? "--set" : c.path, 0), 0u) << e.what();
  }
}

TEST(Config, ReadsValuesAndKeepsDefaults) {
  TempConfig c("model:\n  n_layer: 4\n  n_head: 4\n  n_embd: 128\n  seq_len: 64\n  vocab_size: 256\n"
               "data:\n  train: d/*train*.bin\ntrain:\n  lr: 1e-3\n  decay_embeddings: yes\n");
  const Config cfg = load_config(c.path);
  EXPECT_EQ(cfg.model.n_layer, 4);
  EXPECT_EQ(cfg.model.n_embd, 128);
  EXPECT_EQ(cfg.data.train, "d/*train*.bin");
  EXPECT_DOUBLE_EQ(cfg.train.lr, 1e-3);
  EXPECT_TRUE(cfg.train.decay_embeddings);
  EXPECT_EQ(cfg.train.batch_size, TrainSection{}.batch_size);
  EXPECT_EQ(cfg.shape().padded_vocab_size, 256);
  EXPECT_EQ(cfg.shape().max_seq_len, 64);
  EXPECT_EQ(cfg.init_seed(), cfg.train.seed);
}

TEST(Config, OverridesWinAndAppearInTheEffectiveYaml) {
  TempConfig c("model:\n  n_layer: 4\n");
  const Config cfg = load_config(c.path, {"model.n_layer=6", "train.steps=7", "model.init=llmc:/x/y.bin"});
  EXPECT_EQ(cfg.model.n_layer, 6);
  EXPECT_EQ(cfg.train.steps, 7);
  EXPECT_TRUE(cfg.init_from_llmc());
  EXPECT_EQ(cfg.init_llmc_path(), "/x/y.bin");
  EXPECT_NE(cfg.yaml_text.find("n_layer: 6"), std::string::npos);
  EXPECT_NE(cfg.yaml_text.find("steps: 7"), std::string::npos);
}

TEST(Config, RejectsUnknownAndMistypedKeys) {
  expect_error("model:\n  n_layers: 4\n", {}, "model.n_layers");
  expect_error("trian:\n  steps: 4\n", {}, "trian.steps");
  expect_error("model: {}\n", {"train.stepz=3"}, "train.stepz", true);
}

TEST(Config, RejectsWrongTypes) {
  expect_error("model:\n  n_layer: four\n", {}, "model.n_layer");
  expect_error("train:\n  lr: [1, 2]\n", {}, "train.lr");
  expect_error("train:\n  seed: -3\n", {}, "train.seed");
  expect_error("train:\n  decay_embeddings: maybe\n", {}, "train.decay_embeddings");
  expect_error("model:\n  n_layer:\n    deep: 1\n", {}, "model.n_layer");
  expect_error("model: {}\n", {"train.batch_size=2.5"}, "train.batch_size", true);
}

TEST(Config, RejectsOutOfRangeValues) {
  expect_error("model:\n  n_embd: 100\n  n_head: 12\n", {}, "model.n_embd");
  expect_error("train:\n  lr: 0\n", {}, "train.lr");
  expect_error("train:\n  lr: 1e-3\n  min_lr: 1e-2\n", {}, "train.min_lr");
  expect_error("model:\n  vocab_size: 70000\n", {}, "model.vocab_size");
  expect_error("model:\n  arch: bert\n", {}, "model.arch");
  expect_error("model:\n  init: banana\n", {}, "model.init");
  expect_error("runtime:\n  gemm: mkl\n", {}, "runtime.gemm");
  expect_error("model: {}\n", {"train.steps=0"}, "train.steps", true);
  expect_error("train:\n  lr_schedule: linear\n", {}, "train.lr_schedule");
  expect_error("train:\n  decay_fraction: 0\n", {}, "train.decay_fraction");
  expect_error("train:\n  decay_fraction: 1.5\n", {}, "train.decay_fraction");
  expect_error("parallel:\n  bucket_mb: -1\n", {}, "parallel.bucket_mb");
  expect_error("parallel:\n  bucket_mb: .inf\n", {}, "parallel.bucket_mb");
  expect_error("model: {}\n", {"parallel.overlap=sometimes"}, "parallel.overlap", true);
}

TEST(Config, PrecisionIsFp32UnlessSetAndOnlyANamedOne) {
  TempConfig c("runtime:\n  precision: bf16\n");
  EXPECT_EQ(load_config(c.path).runtime.precision, "bf16");
  EXPECT_EQ(load_config(c.path, {"runtime.precision=tf32"}).runtime.precision, "tf32");
  TempConfig plain("model: {}\n");
  EXPECT_EQ(load_config(plain.path).runtime.precision, "fp32");
  expect_error("runtime:\n  precision: fp16\n", {}, "runtime.precision");
  expect_error("runtime:\n  precision: BF16\n", {}, "runtime.precision");
  expect_error("model: {}\n", {"runtime.precision=half"}, "runtime.precision", true);
}

TEST(Config, AttentionIsMaterializedUnlessSetAndOnlyANamedOne) {
  TempConfig c("model:\n  attention: fused\n");
  EXPECT_EQ(load_config(c.path).attention(), AttentionKind::fused);
  EXPECT_EQ(load_config(c.path, {"model.attention=materialized"}).attention(), AttentionKind::materialized);
  TempConfig plain("model: {}\n");
  EXPECT_EQ(load_config(plain.path).attention(), AttentionKind::materialized);
  expect_error("model:\n  attention: flash\n", {}, "model.attention");
  expect_error("model: {}\n", {"model.attention=Fused"}, "model.attention", true);
  // Fused attention's tiles take heads of up to kFusedAttentionMaxHeadSize.
  expect_error("model:\n  attention: fused\n  n_head: 1\n  n_embd: 512\n", {}, "model.attention");
  TempConfig wide("model:\n  n_head: 1\n  n_embd: 512\n");
  EXPECT_NO_THROW(load_config(wide.path));
}

TEST(Config, LlamaKeysGiveItsShapeAndItsDefaults) {
  TempConfig tiny("model:\n  arch: llama\n  n_layer: 22\n  n_embd: 2048\n  n_head: 32\n  n_kv_head: 4\n");
  const ModelShape s = load_config(tiny.path).shape();
  EXPECT_EQ(s.arch, Arch::llama);
  EXPECT_EQ(s.kv_heads(), 4);
  EXPECT_EQ(s.group_size(), 8);
  EXPECT_EQ(s.neurons(), 5632);  // TinyLlama's: 8/3 * 2048 = 5461, rounded up to a multiple of 256
  EXPECT_FALSE(s.tie_embeddings);
  EXPECT_FLOAT_EQ(s.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(s.rope_theta, 10000.0f);
  TempConfig set("model:\n  arch: llama\n  n_embd: 96\n  n_head: 6\n  mlp_hidden: 200\n  tie_embeddings: true\n"
                 "  rope_theta: 500000\n  norm_eps: 1e-6\n");
  const ModelShape t = load_config(set.path).shape();
  EXPECT_EQ(t.neurons(), 200);
  EXPECT_EQ(t.kv_heads(), 6);
  EXPECT_TRUE(t.tie_embeddings);
  EXPECT_FLOAT_EQ(t.rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(t.norm_eps, 1e-6f);
  // GPT-2's shape is unchanged by the new keys.
  TempConfig gpt2("model:\n  n_embd: 96\n  n_head: 6\n");
  EXPECT_EQ(load_config(gpt2.path).shape().neurons(), 4 * 96);
  EXPECT_TRUE(load_config(gpt2.path).shape().tie_embeddings);
}

TEST(Config, RejectsLlamaKeysThatDoNotFit) {
  const std::string llama = "model:\n  arch: llama\n  n_embd: 96\n  n_head: 6\n";
  expect_error(llama + "  n_kv_head: 4\n", {}, "model.n_kv_head");
  expect_error("model:\n  arch: llama\n  n_embd: 90\n  n_head: 6\n", {}, "model.n_embd");  // odd head size
  expect_error(llama + "  norm_eps: 0\n", {}, "model.norm_eps");
  expect_error(llama + "  mlp_multiple_of: 0\n", {}, "model.mlp_multiple_of");
  expect_error(llama + "  n_kv_head: 3\n", {"parallel.tp=2"}, "parallel.tp", true);
  expect_error(llama + "  tie_embeddings: maybe\n", {}, "model.tie_embeddings");
  expect_error(llama, {"est.head_unit=neuron"}, "est.head_unit", true);
  // GPT-2 has none of them.
  expect_error("model:\n  n_embd: 96\n  n_head: 6\n  n_kv_head: 2\n", {}, "model.n_kv_head");
  expect_error("model:\n  n_embd: 96\n  n_head: 6\n  mlp_hidden: 100\n", {}, "model.mlp_hidden");
  expect_error("model:\n  tie_embeddings: false\n", {}, "model.tie_embeddings");
}

// KV-group draws are over the key/value heads: the default strata divide them, and TP ranks hold whole groups.
TEST(Config, KvGroupDrawsStratifyOverTheKeyValueHeads) {
  TempConfig groups("model:\n  arch: llama\n  n_embd: 128\n  n_head: 8\n  n_kv_head: 2\n");
  EXPECT_EQ(load_config(groups.path).est_strata(), 2);
  EXPECT_EQ(load_config(groups.path, {"est.head_unit=query"}).est_strata(), 8);
  expect_error("model:\n  arch: llama\n  n_embd: 128\n  n_head: 8\n  n_kv_head: 2\n", {"est.strata=4"}, "est.strata",
               true);
}

// Found by fuzzing (tests/fuzz/regressions/fuzz_schedule): the schedule's checks, like the model's layout, count
// the MLP's 4 * n_embd neurons in an int, which a wider model overflowed.
TEST(Config, RejectsAModelWiderThanItsMlpCanCount) {
  expect_error("model:\n  n_head: 1\n  n_embd: 536870912\n", {}, "model.n_embd");
  TempConfig widest("model:\n  n_head: 1\n  n_embd: 536870911\n");
  EXPECT_EQ(load_config(widest.path).model.n_embd, 536870911);
}

// Found by fuzzing (the config harness): a seed of more than 64 bits ended in std::stoull's exception.
TEST(Config, RejectsASeedOfMoreThan64Bits) {
  expect_error("model:\n  init: '18446744073709551616'\n", {}, "model.init");
  TempConfig largest("model:\n  init: '18446744073709551615'\n");
  EXPECT_EQ(load_config(largest.path).init_seed(), 18446744073709551615ull);
}

TEST(Config, ModelFilesAreTheArchitecturesOwnFormat) {
  TempConfig gpt2("model:\n  init: llmc:gpt2.bin\n");
  EXPECT_EQ(load_config(gpt2.path).init_llmc_path(), "gpt2.bin");
  TempConfig llama("model:\n  arch: llama\n  n_embd: 96\n  n_head: 6\n  init: llama2c:stories.bin\n");
  const Config c = load_config(llama.path);
  EXPECT_TRUE(c.init_from_llama2c());
  EXPECT_EQ(c.init_llama2c_path(), "stories.bin");
  EXPECT_EQ(c.init_seed(), c.train.seed);
  expect_error("model:\n  init: llama2c:stories.bin\n", {}, "model.init");
  expect_error("model:\n  arch: llama\n  n_embd: 96\n  n_head: 6\n  init: llmc:gpt2.bin\n", {}, "model.init");
  expect_error("model:\n  arch: llama\n  n_embd: 96\n  n_head: 6\n  init: 'llama2c:'\n", {}, "model.init");
}

TEST(Config, DefaultStrataComeFromTheModelNotTheLayoutAndMustFitIt) {
  TempConfig c("model:\n  n_head: 12\n  n_embd: 96\n");
  for (int tp : {1, 2, 4}) EXPECT_EQ(load_config(c.path, {"parallel.tp=" + std::to_string(tp)}).est_strata(), 4);
  EXPECT_EQ(load_config(c.path, {"model.n_head=16", "model.n_embd=128"}).est_strata(), 8);
  EXPECT_EQ(load_config(c.path, {"model.n_head=3", "model.n_embd=96"}).est_strata(), 1);
  EXPECT_EQ(load_config(c.path, {"parallel.tp=3", "est.strata=3"}).est_strata(), 3);
  expect_error("model:\n  n_head: 12\n  n_embd: 96\nparallel:\n  tp: 3\n", {}, "est.strata");
  expect_error("model:\n  n_head: 12\n  n_embd: 96\nparallel:\n  tp: 2\nest:\n  strata: 6\n", {}, "est.strata");
}

TEST(Config, RejectsMissingFileBadYamlAndBadOverrideSyntax) {
  try {
    load_config("/nonexistent/est.yaml");
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "/nonexistent/est.yaml");
    EXPECT_EQ(e.key(), "file");
  }
  expect_error("model: [unclosed\n", {}, "yaml");
  expect_error("- a\n- b\n", {}, "yaml");
  expect_error("model: {}\n", {"novalue"}, "novalue", true);
}

TEST(Config, TheRecordedEffectiveYamlReadsBackAsTheSameConfigAndIsCheckedAlike) {
  TempConfig c("model:\n  n_layer: 4\n");
  const Config loaded = load_config(c.path, {"model.n_head=2", "model.n_embd=64", "train.batch_size=3"});
  const Config recorded = parse_config(loaded.yaml_text, "trace.h5: /@config");
  EXPECT_EQ(recorded.path, "trace.h5: /@config");
  EXPECT_EQ(recorded.model.n_layer, 4);
  EXPECT_EQ(recorded.model.n_head, 2);
  EXPECT_EQ(recorded.model.n_embd, 64);
  EXPECT_EQ(recorded.train.batch_size, 3);
  EXPECT_EQ(recorded.yaml_text, loaded.yaml_text);
  for (const auto& [text, key] : {std::pair<std::string, std::string>{"model:\n  n_head: many\n", "model.n_head"},
                                  {"model:\n  n_heads: 2\n", "model.n_heads"},
                                  {"model: [\n", "yaml"}}) {
    try {
      parse_config(text, "trace.h5: /@config");
      ADD_FAILURE() << "accepted " << text;
    } catch (const InputError& e) {
      EXPECT_EQ(e.key(), key) << e.what();
      EXPECT_EQ(e.file().rfind("trace.h5: /@config", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace est
