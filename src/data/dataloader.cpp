#include "data/dataloader.hpp"

#include <glob.h>

#include <algorithm>
#include <stdexcept>

#include "input_error.hpp"

namespace est {
namespace {

std::vector<std::string> glob_sorted(const std::string& pattern) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> paths;
  if (rc == 0) paths.assign(g.gl_pathv, g.gl_pathv + g.gl_pathc);
  ::globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH) throw std::runtime_error(pattern + ": glob failed");
  // glob() sorts by the locale's collation; byte order gives every rank and machine the same shard order.
  std::sort(paths.begin(), paths.end());
  return paths;
}

void check_vocab(const ShardInfo& shard, int64_t offset, const uint16_t* tokens, int64_t n, int vocab_size) {
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] >= vocab_size) {
      throw InputError(shard.path, "token",
                       "token " + std::to_string(tokens[i]) + " at offset " + std::to_string(offset + i) +
                           " is not below vocab_size " + std::to_string(vocab_size));
    }
  }
}

}  // namespace

DataLoader::DataLoader(const std::string& pattern, int B, int T, int vocab_size, const std::string& config_key,
                       int rank, int world)
    : pattern_(pattern), B_(B), T_(T), vocab_size_(vocab_size), rank_(rank), world_(world) {
  if (B <= 0 || T <= 0 || vocab_size <= 0 || world <= 0 || rank < 0 || rank >= world) {
    throw std::invalid_argument("DataLoader: B, T, vocab_size and world must be positive and 0 <= rank < world");
  }
  for (const std::string& path : glob_sorted(pattern)) shards_.push_back(read_shard_header(path));
  if (shards_.empty()) throw InputError(pattern, config_key, "no file matches");
  for (const ShardInfo& s : shards_) {
    if (s.num_tokens < window()) {
      throw InputError(s.path, "ntok",
                       std::to_string(s.num_tokens) + " tokens, fewer than the " + std::to_string(window()) +
                           " one batch needs (world * B * T + 1 with world = " + std::to_string(world) +
                           ", B = " + std::to_string(B) + ", T = " + std::to_string(T) + ")");
    }
  }
  std::vector<uint16_t> first(window());
  read_shard_tokens(shards_[0], 0, window(), first.data());
  check_vocab(shards_[0], 0, first.data(), window(), vocab_size_);
  buffer_.resize(int64_t(B_) * T_ + 1);
}

void DataLoader::next_batch(int* inputs, int* targets) {
  const ShardInfo& shard = shards_[shard_];
  const int64_t n = int64_t(B_) * T_;
  const int64_t start = offset_ + rank_ * n;
  read_shard_tokens(shard, start, n + 1, buffer_.data());
  check_vocab(shard, start, buffer_.data(), n + 1, vocab_size_);
  for (int64_t i = 0; i < n; ++i) {
    inputs[i] = buffer_[i];
    targets[i] = buffer_[i + 1];
  }
  advance();
}

void DataLoader::advance() {
  offset_ += stride();
  if (offset_ + window() > shards_[shard_].num_tokens) {
    shard_ = (shard_ + 1) % int64_t(shards_.size());
    offset_ = 0;
  }
}

void DataLoader::reset() { shard_ = offset_ = 0; }

void DataLoader::seek(const Position& p) {
  if (p.shard < 0 || p.shard >= int64_t(shards_.size())) {
    throw InputError(pattern_, "position",
                     "shard " + std::to_string(p.shard) + " does not exist: " + std::to_string(shards_.size()) +
                         " shards match");
  }
  const ShardInfo& s = shards_[p.shard];
  if (p.offset < 0 || p.offset + window() > s.num_tokens) {
    throw InputError(s.path, "position",
                     "offset " + std::to_string(p.offset) + " leaves no room for a window of " +
                         std::to_string(window()) + " tokens in " + std::to_string(s.num_tokens));
  }
  shard_ = p.shard;
  offset_ = p.offset;
}

int64_t DataLoader::total_tokens() const {
  int64_t n = 0;
  for (const ShardInfo& s : shards_) n += s.num_tokens;
  return n;
}

}  // namespace est
