// llm.c model files: an exact round trip, the raw header and payload llm.c expects, and one clear InputError
// per kind of bad file.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "input_error.hpp"
#include "io/llmc_model.hpp"
#include "model/gpt2.hpp"
#include "test_util.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

ModelShape tiny_shape() {
  ModelShape s;
  s.max_seq_len = 16;
  s.vocab_size = 10;
  s.padded_vocab_size = pad_vocab(10);
  s.n_layer = 2;
  s.n_head = 2;
  s.n_embd = 8;
  return s;
}

constexpr int kB = 1, kT = 4;

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
    EXPECT_EQ(e.key(), key);
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << key;
  return {};
}

float loss_on_fixed_batch(GPT2& m) {
  const std::vector<int> tokens{1, 7, 3, 9}, targets{7, 3, 9, 0};
  m.set_batch(tokens.data(), targets.data());
  return m.forward();
}

class LlmcModel : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/est_llmc_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/model.bin";
    model_.init_random(1234);
    save_llmc_model(path_, model_.shape(), model_.gather_params());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, path_;
  GPT2 model_{tiny_shape(), kB, kT};
};

TEST_F(LlmcModel, RoundTripIsBitwiseExact) {
  GPT2 loaded(tiny_shape(), kB, kT);
  loaded.init_random(99);
  load_llmc_model(path_, loaded);
  const auto want = test::to_host(model_.params()), got = test::to_host(loaded.params());
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

TEST_F(LlmcModel, RawHeaderPayloadAndSizeAreLlmcs) {
  const std::vector<char> bytes = file_bytes(path_);
  const int64_t n = ParameterLayout(tiny_shape()).total;
  ASSERT_EQ(static_cast<int64_t>(bytes.size()), 1024 + 4 * n);
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(path_)), 1024 + 4 * n);

  std::vector<int32_t> header(256);
  std::memcpy(header.data(), bytes.data(), 1024);
  const std::vector<int32_t> want_head{20240326, 3, 16, 10, 2, 2, 8, 128};
  EXPECT_EQ(std::vector<int32_t>(header.begin(), header.begin() + 8), want_head);
  for (int i = 8; i < 256; ++i) EXPECT_EQ(header[i], 0) << "slot " << i;

  // llm.c's payload: every matrix (out, in); est keeps the two output projections (in, out).
  const auto params = test::to_host(model_.params());
  std::vector<float> payload(params.size());
  std::memcpy(payload.data(), bytes.data() + 1024, payload.size() * sizeof(float));
  const ParameterLayout layout(tiny_shape());
  for (const ParamSpec& p : layout.specs)
    for (int64_t i = 0; i < p.size; ++i) {
      int64_t ours = p.offset + i;
      if (p.transposed) {
        const int64_t in = p.shape[1], out = p.shape[2], per_layer = in * out;
        const int64_t l = i / per_layer, o = (i % per_layer) / in, k = i % in;  // file index (l, o, k)
        ours = p.offset + l * per_layer + k * out + o;
      }
      ASSERT_EQ(payload[p.offset + i], params[ours]) << p.name << " entry " << i;
    }

  const ModelShape s = read_llmc_header(path_);
  EXPECT_EQ(s.max_seq_len, 16);
  EXPECT_EQ(s.vocab_size, 10);
  EXPECT_EQ(s.padded_vocab_size, 128);
  EXPECT_EQ(s.n_layer, 2);
  EXPECT_EQ(s.n_head, 2);
  EXPECT_EQ(s.n_embd, 8);
}

TEST_F(LlmcModel, LoadedModelGivesTheSameLoss) {
  GPT2 loaded(tiny_shape(), kB, kT);
  load_llmc_model(path_, loaded);
  const float want = loss_on_fixed_batch(model_);
  EXPECT_TRUE(std::isfinite(want));
  EXPECT_EQ(loss_on_fixed_batch(loaded), want);
}

TEST_F(LlmcModel, SaveReplacesAnExistingFile) {
  GPT2 other(tiny_shape(), kB, kT);
  other.init_random(7);
  save_llmc_model(path_, other.shape(), other.gather_params());
  GPT2 loaded(tiny_shape(), kB, kT);
  load_llmc_model(path_, loaded);
  const auto want = test::to_host(other.params()), got = test::to_host(loaded.params());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
}

TEST_F(LlmcModel, RejectsWrongMagic) {
  patch_int32(path_, 0, 20240520);
  const std::string msg = input_error([&] { read_llmc_header(path_); }, path_, "magic");
  EXPECT_NE(msg.find("20240520"), std::string::npos) << msg;
}

TEST_F(LlmcModel, RejectsBf16VersionWithAHint) {
  patch_int32(path_, 1, 5);
  const std::string msg = input_error([&] { read_llmc_header(path_); }, path_, "version");
  EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fp32"), std::string::npos) << msg;
}

TEST_F(LlmcModel, RejectsUnknownVersion) {
  patch_int32(path_, 1, 1);
  input_error([&] { read_llmc_header(path_); }, path_, "version");
}

TEST_F(LlmcModel, RejectsTruncatedFile) {
  const auto full = static_cast<int64_t>(fs::file_size(path_));
  fs::resize_file(path_, full - 4);
  const std::string msg = input_error([&] { read_llmc_header(path_); }, path_, "size");
  EXPECT_NE(msg.find(std::to_string(full)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(full - 4)), std::string::npos) << msg;
}

TEST_F(LlmcModel, RejectsFileShorterThanTheHeader) {
  fs::resize_file(path_, 100);
  input_error([&] { read_llmc_header(path_); }, path_, "size");
}

TEST_F(LlmcModel, RejectsBadSizesInTheHeader) {
  patch_int32(path_, 5, 3);  // 8 channels over 3 heads
  input_error([&] { read_llmc_header(path_); }, path_, "channels");
  patch_int32(path_, 5, 2);
  patch_int32(path_, 7, 9);  // fewer padded rows than tokens
  input_error([&] { read_llmc_header(path_); }, path_, "padded_vocab_size");
  patch_int32(path_, 4, 0);
  input_error([&] { read_llmc_header(path_); }, path_, "num_layers");
}

TEST_F(LlmcModel, RejectsShapeMismatchAgainstTheModel) {
  ModelShape wider = tiny_shape();
  wider.n_embd = 16;
  GPT2 other(wider, kB, kT);
  const std::string msg = input_error([&] { load_llmc_model(path_, other); }, path_, "channels");
  EXPECT_NE(msg.find("8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16"), std::string::npos) << msg;
}

TEST_F(LlmcModel, RejectsMissingFile) {
  const std::string missing = dir_ + "/none.bin";
  input_error([&] { read_llmc_header(missing); }, missing, "file");
}

}  // namespace
}  // namespace est
