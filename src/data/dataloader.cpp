#include "data/dataloader.hpp"

#include <glob.h>

#include <algorithm>
#include <stdexcept>

#include "input_error.hpp"
#include "random_stream.hpp"

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

DataLoader::DataLoader(const std::string& pattern, int G, int T, int vocab_size, const std::string& config_key,
                       const DataOrder& order)
    : pattern_(pattern), G_(G), T_(T), vocab_size_(vocab_size), order_(order) {
  if (G <= 0 || T <= 0 || vocab_size <= 0) throw std::invalid_argument("DataLoader: G, T and vocab_size must be positive");
  for (const std::string& path : glob_sorted(pattern)) shards_.push_back(read_shard_header(path));
  if (shards_.empty()) throw InputError(pattern, config_key, "no file matches");
  for (const ShardInfo& s : shards_) {
    if (s.num_tokens < window()) {
      throw InputError(s.path, "ntok",
                       std::to_string(s.num_tokens) + " tokens, fewer than the " + std::to_string(window()) +
                           " one batch needs (batch * T + 1 with batch = " + std::to_string(G) +
                           ", T = " + std::to_string(T) + ")");
    }
  }
  std::vector<uint16_t> first(window());
  read_shard_tokens(shards_[0], 0, window(), first.data());
  check_vocab(shards_[0], 0, first.data(), window(), vocab_size_);
  buffer_.resize(window());
}

namespace {

enum Purpose : uint32_t { kShardOrder = 1, kWindowOrder = 2 };

std::vector<int64_t> permutation(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, uint32_t purpose,
                                 uint32_t stream) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  if (!shuffle) return p;
  RandomStream random(seed, uint64_t(epoch), purpose, stream);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[random.below(static_cast<uint32_t>(i + 1))]);
  return p;
}

}  // namespace

int64_t DataLoader::shard_at(int64_t slot) {
  if (shard_order_epoch_ != pos_.epoch) {
    shard_order_ = permutation(int64_t(shards_.size()), order_.shuffle, order_.seed, pos_.epoch, kShardOrder, 0);
    shard_order_epoch_ = pos_.epoch;
  }
  return shard_order_[slot];
}

int64_t DataLoader::offset_at(int64_t shard, int64_t w) {
  if (window_order_epoch_ != pos_.epoch || window_order_shard_ != shard) {
    window_order_ = permutation(windows_in(shard), order_.shuffle, order_.seed, pos_.epoch, kWindowOrder,
                                static_cast<uint32_t>(shard));
    window_order_epoch_ = pos_.epoch;
    window_order_shard_ = shard;
  }
  return window_order_[w] * stride();
}

void DataLoader::next_batch(int* inputs, int* targets, int first, int count) {
  if (count < 0) count = G_ - first;
  if (first < 0 || count < 1 || first + count > G_)
    throw std::invalid_argument("DataLoader: sequences [" + std::to_string(first) + ", " + std::to_string(first + count) +
                                ") are not in a batch of " + std::to_string(G_));
  const int64_t shard = shard_at(pos_.shard);
  const ShardInfo& info = shards_[shard];
  const int64_t n = int64_t(count) * T_;
  const int64_t start = offset_at(shard, pos_.window) + int64_t(first) * T_;
  read_shard_tokens(info, start, n + 1, buffer_.data());
  check_vocab(info, start, buffer_.data(), n + 1, vocab_size_);
  for (int64_t i = 0; i < n; ++i) {
    inputs[i] = buffer_[i];
    targets[i] = buffer_[i + 1];
  }
  if (++pos_.window == windows_in(shard)) {
    pos_.window = 0;
    if (++pos_.shard == int64_t(shards_.size())) {
      pos_.shard = 0;
      ++pos_.epoch;
    }
  }
}

void DataLoader::seek(const Position& p) {
  if (p.epoch < 0 || p.shard < 0 || p.shard >= int64_t(shards_.size())) {
    throw InputError(pattern_, "position",
                     "epoch " + std::to_string(p.epoch) + ", shard " + std::to_string(p.shard) + " does not exist: " +
                         std::to_string(shards_.size()) + " shards match");
  }
  const Position saved = pos_;
  pos_.epoch = p.epoch;
  const int64_t shard = shard_at(p.shard);
  if (p.window < 0 || p.window >= windows_in(shard)) {
    pos_ = saved;
    throw InputError(shards_[shard].path, "position",
                     "window " + std::to_string(p.window) + " does not exist: the shard has " +
                         std::to_string(windows_in(shard)) + " windows of " + std::to_string(window()) + " tokens");
  }
  pos_ = p;
}

int64_t DataLoader::windows() const {
  int64_t n = 0;
  for (size_t s = 0; s < shards_.size(); ++s) n += windows_in(int64_t(s));
  return n;
}

void DataLoader::seek_window(int64_t k) {
  if (order_.shuffle) throw std::logic_error("DataLoader::seek_window: the file order is only defined unshuffled");
  const int64_t total = windows();
  k = ((k % total) + total) % total;
  int64_t shard = 0;
  while (k >= windows_in(shard)) k -= windows_in(shard++);
  seek({0, shard, k});
}

int64_t DataLoader::total_tokens() const {
  int64_t n = 0;
  for (const ShardInfo& s : shards_) n += s.num_tokens;
  return n;
}

}  // namespace est
