#pragma once
// Batches from llm.c token shards. A shard is cut into windows of G*T+1 tokens every G*T tokens; a window is
// one global batch of G sequences, of which each data-parallel rank reads its own run of sequences (plus one
// token for the shifted targets), however the batch is shared out. An epoch visits every window of every shard once: in order, or (shuffled, as llm.c's training
// loader does) with the shards and each shard's windows in a random order drawn from (seed, epoch), so a
// position is enough to resume exactly.
#include <cstdint>
#include <string>
#include <vector>

#include "data/token_shard.hpp"

namespace est {

struct DataOrder {
  bool shuffle = false;
  uint64_t seed = 0;
};

class DataLoader {
 public:
  // Where the next batch comes from: the epoch, then the shard's and the window's places in that epoch's order.
  struct Position {
    int64_t epoch = 0;
    int64_t shard = 0;
    int64_t window = 0;
  };

  // `pattern` is a path or a glob, its matches used in sorted order; `config_key` names the setting it came
  // from in errors. G is the global batch (sequences). Every header and the first window's tokens are checked
  // here, before training starts.
  DataLoader(const std::string& pattern, int G, int T, int vocab_size, const std::string& config_key,
             const DataOrder& order = {});

  // Fills count*T inputs and targets (inputs shifted by one token) from sequences [first, first + count) of
  // the current window (all of it by default), then advances to the next window.
  void next_batch(int* inputs, int* targets, int first = 0, int count = -1);
  void reset() { seek({}); }

  Position position() const { return pos_; }
  // Throws InputError unless `p` names a window that exists.
  void seek(const Position& p);

  // Windows in one epoch, and a seek to the k-th of them in file order (validation spreads its batches so).
  int64_t windows() const;
  void seek_window(int64_t k);

  int64_t total_tokens() const;
  const std::vector<ShardInfo>& shards() const { return shards_; }

 private:
  int64_t window() const { return stride() + 1; }
  int64_t stride() const { return int64_t(G_) * T_; }
  int64_t windows_in(int64_t shard) const { return (shards_[shard].num_tokens - 1) / stride(); }
  // The shard at place `slot` of the current epoch, and the offset of the window at place `w` in it.
  int64_t shard_at(int64_t slot);
  int64_t offset_at(int64_t shard, int64_t w);

  std::string pattern_;
  std::vector<ShardInfo> shards_;
  int G_, T_, vocab_size_;
  DataOrder order_;
  Position pos_;
  std::vector<uint16_t> buffer_;
  // Orders of the current epoch, drawn on first use.
  int64_t shard_order_epoch_ = -1;
  std::vector<int64_t> shard_order_;
  int64_t window_order_epoch_ = -1, window_order_shard_ = -1;
  std::vector<int64_t> window_order_;
};

}  // namespace est
