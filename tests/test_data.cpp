#include <gtest/gtest.h>

#include <algorithm>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <zlib.h>

#include "data/byte_tokenizer.hpp"
#include "data/dataloader.hpp"
#include "data/prepare.hpp"
#include "data/token_shard.hpp"
#include "input_error.hpp"
#include "test_util.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

std::vector<uint16_t> iota_tokens(int64_t n, int first) {
  std::vector<uint16_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<uint16_t>(first + i);
  return t;
}

std::vector<int> iota_ints(int n, int first) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = first + i;
  return v;
}

void make_shard(const std::string& path, int64_t n, int first) {
  const auto t = iota_tokens(n, first);
  write_shard(path, t.data(), n);
}

// A header with arbitrary fields and `payload_tokens` tokens after it, bypassing write_shard's checks.
void write_raw(const std::string& path, int32_t magic, int32_t version, int32_t ntok, int64_t payload_tokens) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = ntok;
  const std::vector<uint16_t> payload(payload_tokens, 7);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(payload.data()), 2 * payload_tokens);
}

// Runs f, expects an InputError naming `file` and `key`, and returns its message.
template <class F>
std::string expect_input_error(F&& f, const std::string& file, const std::string& key) {
  try {
    f();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), file) << e.what();
    EXPECT_EQ(e.key(), key) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no InputError (expected " << file << ", " << key << ")";
  return {};
}

std::vector<uint16_t> read_all(const std::string& path) {
  const ShardInfo s = read_shard_header(path);
  std::vector<uint16_t> t(s.num_tokens);
  read_shard_tokens(s, 0, s.num_tokens, t.data());
  return t;
}

std::vector<uint16_t> read_all(const std::vector<std::string>& paths) {
  std::vector<uint16_t> all;
  for (const auto& p : paths) {
    const auto t = read_all(p);
    all.insert(all.end(), t.begin(), t.end());
  }
  return all;
}

// ---------------------------------------------------------------------------------------------------------

TEST(TokenShard, RoundTrip) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  const auto tokens = iota_tokens(1000, 50000);
  write_shard(path, tokens.data(), 1000);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(fs::file_size(path), 1024u + 2 * 1000);

  const ShardInfo s = read_shard_header(path);
  EXPECT_EQ(s.path, path);
  EXPECT_EQ(s.num_tokens, 1000);
  EXPECT_EQ(read_all(path), tokens);
  std::vector<uint16_t> middle(50);
  read_shard_tokens(s, 100, 50, middle.data());
  EXPECT_EQ(middle, std::vector<uint16_t>(tokens.begin() + 100, tokens.begin() + 150));
  EXPECT_THROW(read_shard_tokens(s, 990, 11, middle.data()), std::out_of_range);
}

TEST(TokenShard, HeaderMatchesLlmc) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  make_shard(path, 3, 0);
  std::vector<int32_t> header(256);
  std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(header.data()), 1024);
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 3);
  for (int i = 3; i < 256; ++i) EXPECT_EQ(header[i], 0) << i;
}

TEST(TokenShard, RejectsWrongMagic) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  write_raw(path, 20240801, 1, 10, 10);
  const std::string msg = expect_input_error([&] { read_shard_header(path); }, path, "magic");
  EXPECT_NE(msg.find("20240801"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20240520"), std::string::npos) << msg;
}

TEST(TokenShard, RejectsWrongVersion) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  write_raw(path, 20240520, 7, 10, 10);
  expect_input_error([&] { read_shard_header(path); }, path, "version");
}

TEST(TokenShard, RejectsNonPositiveCount) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  write_raw(path, 20240520, 1, 0, 0);
  expect_input_error([&] { read_shard_header(path); }, path, "ntok");
  write_raw(path, 20240520, 1, -5, 0);
  expect_input_error([&] { read_shard_header(path); }, path, "ntok");
}

TEST(TokenShard, RejectsTruncatedFile) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  write_raw(path, 20240520, 1, 100, 60);
  const std::string msg = expect_input_error([&] { read_shard_header(path); }, path, "size");
  EXPECT_NE(msg.find("1224"), std::string::npos) << msg;  // expected bytes
  EXPECT_NE(msg.find("1144"), std::string::npos) << msg;  // actual bytes

  make_shard(path, 10, 0);
  fs::resize_file(path, 100);
  expect_input_error([&] { read_shard_header(path); }, path, "size");
}

TEST(TokenShard, RejectsSizeMismatch) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  write_raw(path, 20240520, 1, 100, 101);
  const std::string msg = expect_input_error([&] { read_shard_header(path); }, path, "size");
  EXPECT_NE(msg.find("1224"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1226"), std::string::npos) << msg;
}

TEST(TokenShard, RejectsMissingFile) {
  TempDir dir;
  const std::string path = dir.file("absent.bin");
  expect_input_error([&] { read_shard_header(path); }, path, "file");
  expect_input_error([&] { read_shard_header(dir.file("")); }, dir.file(""), "file");  // a directory
}

TEST(TokenShard, ShortReadAfterTheFileShrank) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  make_shard(path, 100, 0);
  const ShardInfo s = read_shard_header(path);
  fs::resize_file(path, 1024 + 2 * 50);
  std::vector<uint16_t> out(60);
  expect_input_error([&] { read_shard_tokens(s, 0, 60, out.data()); }, path, "size");
}

// ---------------------------------------------------------------------------------------------------------

TEST(ByteTokenizer, RoundTripsEveryByte) {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  const auto tokens = encode_bytes(bytes);
  ASSERT_EQ(tokens.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tokens[b], b);
  EXPECT_EQ(decode_bytes(tokens), bytes);
  EXPECT_EQ(kByteVocabSize, 256);
}

TEST(ByteTokenizer, RejectsNonByteToken) {
  const std::vector<uint16_t> tokens = {65, 256};
  EXPECT_THROW(decode_bytes(tokens), std::out_of_range);
}

// ---------------------------------------------------------------------------------------------------------

constexpr int B = 2, T = 4, BT = B * T;

struct Batch {
  std::vector<int> inputs, targets;
};

// The next batch, or (first >= 0) one rank's B sequences of a larger global batch starting at `first`.
Batch next(DataLoader& loader, int first = -1) {
  Batch b{std::vector<int>(BT), std::vector<int>(BT)};
  if (first < 0)
    loader.next_batch(b.inputs.data(), b.targets.data());
  else
    loader.next_batch(b.inputs.data(), b.targets.data(), first, B);
  return b;
}

void expect_position(const DataLoader& loader, int64_t epoch, int64_t shard, int64_t window) {
  EXPECT_EQ(loader.position().epoch, epoch);
  EXPECT_EQ(loader.position().shard, shard);
  EXPECT_EQ(loader.position().window, window);
}

void expect_batch(DataLoader& loader, int first, const char* what) {
  const Batch b = next(loader);
  EXPECT_EQ(b.inputs, iota_ints(BT, first)) << what;
  EXPECT_EQ(b.targets, iota_ints(BT, first + 1)) << what;
}

TEST(DataLoader, TargetsAreInputsShiftedByOne) {
  TempDir dir;
  make_shard(dir.file("s.bin"), 20, 0);
  DataLoader loader(dir.file("s.bin"), B, T, 256, "train_data");
  const Batch b = next(loader);
  EXPECT_EQ(b.inputs, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b.targets, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(DataLoader, AdvancesSwitchesShardsAndWraps) {
  TempDir dir;
  make_shard(dir.file("s_000000.bin"), 20, 0);  // windows at 0 and 8; 16 + 9 > 20
  make_shard(dir.file("s_000001.bin"), 20, 100);
  DataLoader loader(dir.file("s_*.bin"), B, T, 256, "train_data");
  EXPECT_EQ(loader.total_tokens(), 40);

  expect_batch(loader, 0, "first");
  expect_position(loader, 0, 0, 1);
  expect_batch(loader, 8, "second");
  expect_position(loader, 0, 1, 0);
  expect_batch(loader, 100, "next shard");
  expect_batch(loader, 108, "next shard, second");
  expect_position(loader, 1, 0, 0);
  expect_batch(loader, 0, "wrapped into the next epoch");
}

TEST(DataLoader, ResetReturnsToTheFirstWindow) {
  TempDir dir;
  make_shard(dir.file("s_000000.bin"), 20, 0);
  make_shard(dir.file("s_000001.bin"), 20, 100);
  DataLoader loader(dir.file("s_*.bin"), B, T, 256, "train_data");
  for (int i = 0; i < 3; ++i) next(loader);
  loader.reset();
  expect_position(loader, 0, 0, 0);
  expect_batch(loader, 0, "after reset");
}

TEST(DataLoader, PositionSeekRoundTrip) {
  TempDir dir;
  make_shard(dir.file("s_000000.bin"), 20, 0);
  make_shard(dir.file("s_000001.bin"), 20, 100);
  const std::string pattern = dir.file("s_*.bin");
  DataLoader loader(pattern, B, T, 256, "train_data");
  for (int i = 0; i < 3; ++i) next(loader);
  const DataLoader::Position saved = loader.position();
  expect_position(loader, 0, 1, 1);
  const Batch want = next(loader);

  DataLoader resumed(pattern, B, T, 256, "train_data");
  resumed.seek(saved);
  const Batch got = next(resumed);
  EXPECT_EQ(got.inputs, want.inputs);
  EXPECT_EQ(got.targets, want.targets);
  expect_position(resumed, loader.position().epoch, loader.position().shard, loader.position().window);

  expect_input_error([&] { resumed.seek({0, 2, 0}); }, pattern, "position");
  expect_input_error([&] { resumed.seek({0, -1, 0}); }, pattern, "position");
  expect_input_error([&] { resumed.seek({-1, 0, 0}); }, pattern, "position");
  expect_input_error([&] { resumed.seek({0, 0, 2}); }, dir.file("s_000000.bin"), "position");  // 2 windows
  expect_input_error([&] { resumed.seek({0, 0, -1}); }, dir.file("s_000000.bin"), "position");
  expect_batch(resumed, 0, "a failed seek leaves the position alone");
}

void expect_slice(DataLoader& loader, int first_sequence, int first_token, const char* what) {
  const Batch b = next(loader, first_sequence);
  EXPECT_EQ(b.inputs, iota_ints(BT, first_token)) << what;
  EXPECT_EQ(b.targets, iota_ints(BT, first_token + 1)) << what;
}

TEST(DataLoader, RanksReadTheirSequencesOfTheSameWindow) {
  TempDir dir;
  make_shard(dir.file("s.bin"), 40, 0);  // global batches of 2 * 2 * 4 + 1 = 17 tokens at 0 and 16
  DataLoader rank0(dir.file("s.bin"), 2 * B, T, 256, "train_data");
  DataLoader rank1(dir.file("s.bin"), 2 * B, T, 256, "train_data");
  expect_slice(rank0, 0, 0, "rank 0");
  expect_slice(rank1, B, 8, "rank 1");
  expect_position(rank1, 0, 0, 1);
  expect_slice(rank0, 0, 16, "rank 0, second window");
  expect_slice(rank1, B, 24, "rank 1, second window");
  expect_slice(rank1, B, 8, "rank 1, wrapped");
  Batch uneven{std::vector<int>(3 * T), std::vector<int>(3 * T)};
  // rank 0 has wrapped to the first window; now a share of 3 of its 4 sequences
  rank0.next_batch(uneven.inputs.data(), uneven.targets.data(), 1, 3);
  EXPECT_EQ(uneven.inputs, iota_ints(3 * T, T));
  EXPECT_THROW(rank0.next_batch(uneven.inputs.data(), uneven.targets.data(), 2, 3), std::invalid_argument);
}

// The first input token of every batch of one epoch.
std::vector<int> epoch_starts(DataLoader& loader) {
  std::vector<int> starts;
  const int64_t epoch = loader.position().epoch;
  while (loader.position().epoch == epoch) starts.push_back(next(loader).inputs[0]);
  return starts;
}

TEST(DataLoader, ShuffledEpochsVisitEveryWindowOnceInTheirOwnOrder) {
  TempDir dir;
  make_shard(dir.file("s_000000.bin"), 8 * 40 + 1, 0);  // 40 windows each
  make_shard(dir.file("s_000001.bin"), 8 * 40 + 1, 1000);
  const std::string pattern = dir.file("s_*.bin");
  DataLoader plain(pattern, B, T, 2048, "train_data");
  DataLoader shuffled(pattern, B, T, 2048, "train_data", {true, 7});
  DataLoader same_seed(pattern, B, T, 2048, "train_data", {true, 7});
  DataLoader other_seed(pattern, B, T, 2048, "train_data", {true, 8});
  const auto in_order = epoch_starts(plain);
  const auto epoch0 = epoch_starts(shuffled), epoch1 = epoch_starts(shuffled);
  ASSERT_EQ(in_order.size(), 80u);
  EXPECT_NE(epoch0, in_order);
  EXPECT_NE(epoch1, epoch0);
  EXPECT_EQ(epoch_starts(same_seed), epoch0);
  EXPECT_NE(epoch_starts(other_seed), epoch0);
  for (auto order : {epoch0, epoch1}) {
    std::sort(order.begin(), order.end());
    EXPECT_EQ(order, in_order) << "every window exactly once";
  }
}

TEST(DataLoader, ShuffledPositionResumesExactlyAndRanksShareTheOrder) {
  TempDir dir;
  make_shard(dir.file("s.bin"), 16 * 30 + 1, 0);  // 30 windows of 2 ranks x 8 tokens
  DataLoader rank0(dir.file("s.bin"), 2 * B, T, 2048, "train_data", {true, 3});
  DataLoader rank1(dir.file("s.bin"), 2 * B, T, 2048, "train_data", {true, 3});
  for (int i = 0; i < 45; ++i) {
    const Batch a = next(rank0, 0), b = next(rank1, B);
    EXPECT_EQ(b.inputs[0], a.inputs[0] + BT) << "rank 1 takes the second slice of the same window";
  }
  DataLoader resumed(dir.file("s.bin"), 2 * B, T, 2048, "train_data", {true, 3});
  resumed.seek(rank0.position());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(next(resumed, 0).inputs, next(rank0, 0).inputs);
}

TEST(DataLoader, SeekWindowCountsWindowsAcrossShardsInFileOrder) {
  TempDir dir;
  make_shard(dir.file("s_000000.bin"), 20, 0);  // 2 windows
  make_shard(dir.file("s_000001.bin"), 30, 100);  // 3 windows
  DataLoader loader(dir.file("s_*.bin"), B, T, 256, "train_data");
  EXPECT_EQ(loader.windows(), 5);
  loader.seek_window(3);
  expect_batch(loader, 108, "fourth window: the second of shard 1");
  loader.seek_window(5);
  expect_batch(loader, 0, "wraps around");
}

TEST(DataLoader, GlobsShardsInSortedOrder) {
  TempDir dir;
  make_shard(dir.file("d_000002.bin"), 9, 200);  // one window each
  make_shard(dir.file("d_000000.bin"), 9, 0);
  make_shard(dir.file("d_000001.bin"), 10, 100);
  make_shard(dir.file("other.bin"), 9, 50);
  DataLoader loader(dir.file("d_*.bin"), B, T, 256, "train_data");
  ASSERT_EQ(loader.shards().size(), 3u);
  EXPECT_EQ(loader.shards()[0].path, dir.file("d_000000.bin"));
  EXPECT_EQ(loader.shards()[1].path, dir.file("d_000001.bin"));
  EXPECT_EQ(loader.shards()[2].path, dir.file("d_000002.bin"));
  EXPECT_EQ(loader.total_tokens(), 28);
  expect_batch(loader, 0, "shard 0");
  expect_batch(loader, 100, "shard 1");
  expect_batch(loader, 200, "shard 2");
  expect_batch(loader, 0, "wrapped");
}

TEST(DataLoader, RejectsPatternWithoutMatch) {
  TempDir dir;
  const std::string pattern = dir.file("none_*.bin");
  const std::string msg =
      expect_input_error([&] { DataLoader(pattern, B, T, 256, "train_data"); }, pattern, "train_data");
  EXPECT_NE(msg.find("no file matches"), std::string::npos) << msg;
  expect_input_error([&] { DataLoader(dir.file("x.bin"), B, T, 256, "val_data"); }, dir.file("x.bin"), "val_data");
}

TEST(DataLoader, RejectsShardSmallerThanOneWindow) {
  TempDir dir;
  make_shard(dir.file("a.bin"), 17, 0);  // B * T + 1 = 9 tokens per window, 25 for a global batch of 3 B
  make_shard(dir.file("b.bin"), 8, 0);
  expect_input_error([&] { DataLoader(dir.file("*.bin"), B, T, 256, "train_data"); }, dir.file("b.bin"), "ntok");
  expect_input_error([&] { DataLoader(dir.file("a.bin"), 3 * B, T, 256, "train_data"); }, dir.file("a.bin"), "ntok");
}

TEST(DataLoader, RejectsBadHeaderAmongShards) {
  TempDir dir;
  make_shard(dir.file("s_000000.bin"), 20, 0);
  write_raw(dir.file("s_000001.bin"), 12345, 1, 20, 20);
  expect_input_error([&] { DataLoader(dir.file("s_*.bin"), B, T, 256, "train_data"); }, dir.file("s_000001.bin"),
                     "magic");
}

TEST(DataLoader, RejectsTokenOutsideVocabInFirstWindow) {
  TempDir dir;
  auto tokens = iota_tokens(20, 0);
  tokens[3] = 300;
  write_shard(dir.file("s.bin"), tokens.data(), 20);
  const std::string msg =
      expect_input_error([&] { DataLoader(dir.file("s.bin"), B, T, 256, "train_data"); }, dir.file("s.bin"), "token");
  EXPECT_NE(msg.find("300"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("256"), std::string::npos) << msg;
}

TEST(DataLoader, RejectsTokenOutsideVocabInLaterBatch) {
  TempDir dir;
  std::vector<uint16_t> tokens(30, 1);
  tokens[20] = 999;
  write_shard(dir.file("s.bin"), tokens.data(), 30);
  DataLoader loader(dir.file("s.bin"), B, T, 256, "train_data");
  next(loader);
  next(loader);
  const std::string msg = expect_input_error([&] { next(loader); }, dir.file("s.bin"), "token");
  EXPECT_NE(msg.find("999"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 20"), std::string::npos) << msg;
  expect_position(loader, 0, 0, 2);  // the failed batch did not advance
}

// ---------------------------------------------------------------------------------------------------------

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string write_text(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  return path;
}

// Puts the blocks back in text order: block b came from validation when (b + 1) % k == 0.
std::string interleave(const std::vector<uint16_t>& train, const std::vector<uint16_t>& val, int64_t k) {
  std::vector<uint16_t> all;
  size_t t = 0, v = 0;
  for (int64_t b = 0; t < train.size() || v < val.size(); ++b) {
    const bool is_val = k > 0 && (b + 1) % k == 0;
    const auto& src = is_val ? val : train;
    size_t& at = is_val ? v : t;
    const size_t n = std::min<size_t>(kPrepareBlockBytes, src.size() - at);
    all.insert(all.end(), src.begin() + at, src.begin() + at + n);
    at += n;
  }
  return decode_bytes(all);
}

size_t count_files(const TempDir& dir, const std::string& sub) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir.file(sub))) n += e.is_regular_file();
  return n;
}

const size_t kTextBytes = 10 * kPrepareBlockBytes + 1000;  // 11 blocks, the last one short

TEST(PrepareText, RoundTripsInBlockOrder) {
  TempDir dir;
  const std::string text = random_bytes(kTextBytes, 1);
  const std::string path = write_text(dir, "corpus.txt", text);
  const PreparedData d = prepare_text({path}, dir.file("out"), 0.2);  // k = 5: blocks 4 and 9

  ASSERT_EQ(d.val.size(), 1u);
  ASSERT_EQ(d.train.size(), 1u);
  EXPECT_EQ(d.val[0], dir.file("out") + "/corpus_val_000000.bin");
  EXPECT_EQ(d.train[0], dir.file("out") + "/corpus_train_000000.bin");
  EXPECT_EQ(d.val_tokens, 2 * kPrepareBlockBytes);
  EXPECT_EQ(d.train_tokens + d.val_tokens, int64_t(kTextBytes));
  EXPECT_NEAR(double(d.val_tokens) / kTextBytes, 0.2, 0.02);
  EXPECT_EQ(interleave(read_all(d.train), read_all(d.val), 5), text);
}

TEST(PrepareText, SplitsIntoShardsAndRemovesStaleOnes) {
  TempDir dir;
  const std::string text = random_bytes(kTextBytes, 2);
  const std::string path = write_text(dir, "corpus.txt", text);
  const PreparedData d = prepare_text({path}, dir.file("out"), 0.2, "", 20000);
  ASSERT_EQ(d.train.size(), 7u);  // 132072 tokens
  ASSERT_EQ(d.val.size(), 2u);    // 32768 tokens
  EXPECT_EQ(d.train[6], dir.file("out") + "/corpus_train_000006.bin");
  EXPECT_EQ(d.val[1], dir.file("out") + "/corpus_val_000001.bin");
  for (const auto& p : d.train) EXPECT_LE(read_shard_header(p).num_tokens, 20000);
  EXPECT_EQ(interleave(read_all(d.train), read_all(d.val), 5), text);

  const PreparedData again = prepare_text({path}, dir.file("out"), 0.2);
  EXPECT_EQ(again.train.size(), 1u);
  EXPECT_EQ(count_files(dir, "out"), 2u);
}

TEST(PrepareText, ZeroValFractionWritesOnlyTrain) {
  TempDir dir;
  const std::string text = random_bytes(5000, 3);
  const std::string path = write_text(dir, "small.txt", text);
  const PreparedData d = prepare_text({path}, dir.file("out"), 0.0);
  EXPECT_TRUE(d.val.empty());
  EXPECT_EQ(d.val_tokens, 0);
  ASSERT_EQ(d.train.size(), 1u);
  EXPECT_EQ(decode_bytes(read_all(d.train[0])), text);
}

TEST(PrepareText, FeedsTheDataLoader) {
  TempDir dir;
  const std::string text = random_bytes(kTextBytes, 4);
  const PreparedData d = prepare_text({write_text(dir, "corpus.txt", text)}, dir.file("out"), 0.1);
  DataLoader loader(dir.file("out/corpus_train_*.bin"), 4, 64, kByteVocabSize, "train_data");
  std::vector<int> inputs(256), targets(256);
  loader.next_batch(inputs.data(), targets.data());
  for (int i = 0; i < 256; ++i) ASSERT_EQ(inputs[i], static_cast<unsigned char>(text[i])) << i;
  EXPECT_EQ(loader.total_tokens(), d.train_tokens);
}

void write_gzip(const std::string& path, const std::string& text) {
  const gzFile out = gzopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, text.data(), unsigned(text.size())), int(text.size()));
  ASSERT_EQ(gzclose(out), Z_OK);
}

TEST(PrepareText, ReadsSeveralInputsInOrderPlainOrCompressed) {
  TempDir dir;
  const std::string first = random_bytes(kTextBytes, 7), second = random_bytes(3 * kPrepareBlockBytes + 5, 8);
  const std::string plain = write_text(dir, "bible.txt", first), packed = dir.file("dict.dict.dz");
  write_gzip(packed, second);
  const PreparedData d = prepare_text({plain, packed}, dir.file("out"), 0.2, "english");
  EXPECT_EQ(d.train[0], dir.file("out") + "/english_train_000000.bin");
  EXPECT_EQ(d.train_tokens + d.val_tokens, int64_t(first.size() + second.size()));
  EXPECT_EQ(interleave(read_all(d.train), read_all(d.val), 5), first + second);

  // Without a name, the first input's name up to its first dot.
  EXPECT_EQ(prepare_text({packed, plain}, dir.file("out"), 0.2).val[0], dir.file("out") + "/dict_val_000000.bin");
  expect_input_error([&] { prepare_text({plain, dir.file("absent.gz")}, dir.file("out"), 0.2); },
                     dir.file("absent.gz"), "file");
  expect_input_error([&] { prepare_text({}, dir.file("out"), 0.2); }, "", "--text");
}

TEST(PrepareText, RejectsBadValFraction) {
  TempDir dir;
  const std::string path = write_text(dir, "t.txt", random_bytes(kTextBytes, 5));
  for (double f : {-0.1, 1.0, 1.5, 0.7, std::nan("")}) {
    expect_input_error([&] { prepare_text({path}, dir.file("out"), f); }, "--val-fraction", "val_fraction");
  }
  EXPECT_FALSE(fs::exists(dir.file("out")));
}

TEST(PrepareText, RejectsMissingOrEmptyText) {
  TempDir dir;
  expect_input_error([&] { prepare_text({dir.file("absent.txt")}, dir.file("out"), 0.1); }, dir.file("absent.txt"),
                     "file");
  const std::string empty = write_text(dir, "empty.txt", "");
  expect_input_error([&] { prepare_text({empty}, dir.file("out"), 0.0); }, empty, "file");
}

TEST(PrepareText, RequiresOneValidationBlock) {
  TempDir dir;
  const std::string path = write_text(dir, "t.txt", random_bytes(3 * kPrepareBlockBytes, 6));
  expect_input_error([&] { prepare_text({path}, dir.file("out"), 0.25); }, path, "val_fraction");  // k = 4
  EXPECT_EQ(prepare_text({path}, dir.file("out"), 0.34).val_tokens, kPrepareBlockBytes);         // k = 3
}

}  // namespace
}  // namespace est
