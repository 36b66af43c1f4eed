// llama2.c model files: an exact round trip (tied and untied), the raw layout run.c reads (interleaved RoPE rows,
// (out, in) projections, no vocabulary padding), the same logits after loading, and one InputError per bad file.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "input_error.hpp"
#include "io/llama2c_model.hpp"
#include "model/llama.hpp"
#include "test_util.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

// 4 query heads of size 4 over 2 key/value heads, 24 neurons; 43 tokens padded to 48 rows.
ModelShape llama_shape(bool tied) {
  ModelShape s = test::small_shape(2, 4, 16, 43, 8);
  s.padded_vocab_size = 48;
  s.arch = Arch::llama;
  s.n_kv_head = 2;
  s.mlp_hidden = 24;
  s.tie_embeddings = tied;
  return s;
}

constexpr int kB = 1, kT = 4;
enum Slot { DIM, HIDDEN_DIM, N_LAYERS, N_HEADS, N_KV_HEADS, VOCAB_SIZE, SEQ_LEN };

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void patch_int32(const std::string& path, int slot, int32_t value) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(slot * 4);
  f.write(reinterpret_cast<const char*>(&value), sizeof value);
}

// Runs `f`, which must throw InputError for `path` and `key`; returns the message.
std::string input_error(const std::function<void()>& f, const std::string& path, const std::string& key) {
  try {
    f();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_EQ(e.key(), key) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << key;
  return {};
}

std::vector<float> logits_on_fixed_batch(Llama& m) {
  const std::vector<int> tokens{1, 42, 3, 17}, targets{42, 3, 17, 0};
  m.set_batch(tokens.data(), targets.data());
  m.forward();
  return test::to_host(m.logits());
}

class Llama2cModel : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    model_.init_random(1234);
    save_llama2c_model(path_, model_.shape(), model_.gather_params());
  }
  ModelShape shape() const { return llama_shape(GetParam()); }

  test::TempDir dir_;
  std::string path_ = dir_.file("model.bin");
  Llama model_{shape(), kB, kT};
};

TEST_P(Llama2cModel, RoundTripIsBitwiseExact) {
  Llama loaded(shape(), kB, kT);
  loaded.init_random(99);
  load_llama2c_model(path_, loaded);
  const auto want = test::to_host(model_.params()), got = test::to_host(loaded.params());
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

TEST_P(Llama2cModel, LoadedModelGivesTheSameLogits) {
  Llama loaded(shape(), kB, kT);
  load_llama2c_model(path_, loaded);
  const auto want = logits_on_fixed_batch(model_), got = logits_on_fixed_batch(loaded);
  EXPECT_TRUE(std::isfinite(want[0]));
  EXPECT_EQ(got, want);
}

// The header and a few entries of each tensor where run.c looks for them.
TEST_P(Llama2cModel, RawLayoutIsRunCs) {
  const ModelShape s = shape();
  const int64_t C = 16, V = 43, L = 2, hs = 4, Q = 16, K = 8, M = 24, T = 8;
  const std::vector<char> bytes = file_bytes(path_);
  const int64_t values = V * C * (s.tie_embeddings ? 1 : 2) + L * (2 * C + C * (2 * Q + 2 * K) + 3 * M * C) + C + T * hs;
  ASSERT_EQ(int64_t(bytes.size()), 28 + 4 * values);
  std::vector<int32_t> header(7);
  std::memcpy(header.data(), bytes.data(), 28);
  EXPECT_EQ(header, (std::vector<int32_t>{16, 24, 2, 4, 2, s.tie_embeddings ? 43 : -43, 8}));
  std::vector<float> file(values);
  std::memcpy(file.data(), bytes.data() + 28, 4 * values);

  const auto p = test::to_host(model_.params());
  const ParameterLayout est(s);
  const auto at = [&](int id) { return est[id].offset; };
  const int64_t wq = V * C + L * C, wk = wq + L * Q * C, wv = wk + L * K * C, wo = wv + L * K * C;
  const int64_t w1 = wo + L * C * Q + L * C, w2 = w1 + L * M * C, w3 = w2 + L * C * M, rope = w3 + L * M * C + C;
  const int64_t l = 1, c = 5, QKV = Q + 2 * K;
  EXPECT_EQ(file[7 * C + c], p[at(L_WTE) + 7 * C + c]);
  // Head 2's est rows 1 (first half) and 3 (second half) are the file's rows 2 and 3 of that head.
  EXPECT_EQ(file[wq + (l * Q + 2 * hs + 2) * C + c], p[at(L_QKVW) + (l * QKV + 2 * hs + 1) * C + c]);
  EXPECT_EQ(file[wq + (l * Q + 2 * hs + 3) * C + c], p[at(L_QKVW) + (l * QKV + 2 * hs + 3) * C + c]);
  EXPECT_EQ(file[wk + (l * K + hs + 0) * C + c], p[at(L_QKVW) + (l * QKV + Q + hs + 0) * C + c]);
  EXPECT_EQ(file[wk + (l * K + hs + 1) * C + c], p[at(L_QKVW) + (l * QKV + Q + hs + 2) * C + c]);
  EXPECT_EQ(file[wv + (l * K + 5) * C + c], p[at(L_QKVW) + (l * QKV + Q + K + 5) * C + c]);
  // wo (out = C, in = Q) from est's (in, out); w2 likewise; w1 and w3 the gate and up halves of gateupw.
  EXPECT_EQ(file[wo + (l * C + c) * Q + 9], p[at(L_ATTPROJW) + (l * Q + 9) * C + c]);
  EXPECT_EQ(file[w2 + (l * C + c) * M + 20], p[at(L_DOWNW) + (l * M + 20) * C + c]);
  EXPECT_EQ(file[w1 + (l * M + 20) * C + c], p[at(L_GATEUPW) + (l * 2 * M + 20) * C + c]);
  EXPECT_EQ(file[w3 + (l * M + 20) * C + c], p[at(L_GATEUPW) + (l * 2 * M + M + 20) * C + c]);
  EXPECT_EQ(file[rope - C + c], p[at(L_RMSFW) + c]);
  // freq_cis_real and _imag at position 3, pair 1: the angle 3 * 10000^(-2/4).
  EXPECT_FLOAT_EQ(file[rope + 3 * 2 + 1], float(std::cos(3 * std::pow(10000.0, -0.5))));
  EXPECT_FLOAT_EQ(file[rope + T * 2 + 3 * 2 + 1], float(std::sin(3 * std::pow(10000.0, -0.5))));
  if (!s.tie_embeddings) {
    EXPECT_EQ(file[rope + T * hs + 42 * C + c], p[at(L_LMHEAD) + 42 * C + c]);
  }

  const ModelShape h = read_llama2c_header(path_);
  EXPECT_EQ(h.arch, Arch::llama);
  EXPECT_EQ(h.vocab_size, 43);
  EXPECT_EQ(h.padded_vocab_size, 128);
  EXPECT_EQ(h.kv_heads(), 2);
  EXPECT_EQ(h.neurons(), 24);
  EXPECT_EQ(h.max_seq_len, 8);
  EXPECT_EQ(h.tie_embeddings, s.tie_embeddings);
  EXPECT_FLOAT_EQ(h.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(h.norm_eps, 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, Llama2cModel, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "tied" : "untied"; });

class Llama2cFile : public Llama2cModel {};

TEST_P(Llama2cFile, RejectsEachNonPositiveField) {
  const std::vector<char> good = file_bytes(path_);
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int slot = DIM; slot <= SEQ_LEN; ++slot) {
    patch_int32(path_, slot, 0);
    input_error([&] { read_llama2c_header(path_); }, path_, names[slot]);
    std::ofstream(path_, std::ios::binary).write(good.data(), std::streamsize(good.size()));
  }
  patch_int32(path_, N_HEADS, -4);
  input_error([&] { read_llama2c_header(path_); }, path_, "n_heads");
}

TEST_P(Llama2cFile, RejectsHeadsThatDoNotFit) {
  patch_int32(path_, N_HEADS, 3);  // 16 channels over 3 heads
  input_error([&] { read_llama2c_header(path_); }, path_, "dim");
  patch_int32(path_, N_HEADS, 8);  // head size 2 is fine, but 3 key/value heads do not divide 8
  patch_int32(path_, N_KV_HEADS, 3);
  input_error([&] { read_llama2c_header(path_); }, path_, "n_kv_heads");
  patch_int32(path_, N_KV_HEADS, 1);
  patch_int32(path_, N_HEADS, 16);  // head size 1: RoPE has no pair to rotate
  const std::string msg = input_error([&] { read_llama2c_header(path_); }, path_, "dim");
  EXPECT_NE(msg.find("odd"), std::string::npos) << msg;
}

TEST_P(Llama2cFile, RejectsHugeHeaderValuesWithoutOverflow) {
  patch_int32(path_, DIM, 1 << 30);
  patch_int32(path_, HIDDEN_DIM, INT32_MAX);
  patch_int32(path_, N_LAYERS, INT32_MAX);
  const std::string msg = input_error([&] { read_llama2c_header(path_); }, path_, "size");
  EXPECT_NE(msg.find("2^62"), std::string::npos) << msg;
  patch_int32(path_, VOCAB_SIZE, INT32_MIN);
  input_error([&] { read_llama2c_header(path_); }, path_, "vocab_size");
}

TEST_P(Llama2cFile, RejectsWrongSizeTruncationAndAShortHeader) {
  const auto full = int64_t(fs::file_size(path_));
  std::ofstream(path_, std::ios::binary | std::ios::app).write("\0\0\0\0", 4);
  std::string msg = input_error([&] { read_llama2c_header(path_); }, path_, "size");
  EXPECT_NE(msg.find(std::to_string(full + 4)), std::string::npos) << msg;
  fs::resize_file(path_, full - 4);
  msg = input_error([&] { read_llama2c_header(path_); }, path_, "size");
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  fs::resize_file(path_, 20);
  msg = input_error([&] { read_llama2c_header(path_); }, path_, "size");
  EXPECT_NE(msg.find("28-byte header"), std::string::npos) << msg;
  const std::string missing = dir_.file("none.bin");
  input_error([&] { read_llama2c_header(missing); }, missing, "file");
}

TEST_P(Llama2cFile, RejectsAModelOfAnotherShape) {
  ModelShape other = shape();
  other.n_kv_head = 4;
  Llama more_kv(other, kB, kT);
  const std::string msg = input_error([&] { load_llama2c_model(path_, more_kv); }, path_, "n_kv_heads");
  EXPECT_NE(msg.find("the file has 2, the config 4"), std::string::npos) << msg;
  other = shape();
  other.tie_embeddings = !other.tie_embeddings;
  Llama retied(other, kB, kT);
  input_error([&] { load_llama2c_model(path_, retied); }, path_, "vocab_size");
  other = shape();
  other.max_seq_len = 16;
  Llama longer(other, kB, 16);  // a context of 16 in a file of seq_len 8
  input_error([&] { load_llama2c_model(path_, longer); }, path_, "seq_len");
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, Llama2cFile, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "tied" : "untied"; });

}  // namespace
}  // namespace est
