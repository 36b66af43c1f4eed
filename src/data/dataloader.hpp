#pragma once
// Batches from llm.c token shards, in llm.c's order without shuffling: each global batch is a window of
// world*B*T+1 consecutive tokens, rank r takes the r-th B*T slice of it (plus one token for the shifted
// targets), and a shard is left when its next window would not fit.
#include <cstdint>
#include <string>
#include <vector>

#include "data/token_shard.hpp"

namespace est {

class DataLoader {
 public:
  // Where the next global window starts.
  struct Position {
    int64_t shard;
    int64_t offset;  // in tokens
  };

  // `pattern` is a path or a glob, its matches used in sorted order; `config_key` names the setting it came
  // from in errors. Every header and the first window's tokens are checked here, before training starts.
  DataLoader(const std::string& pattern, int B, int T, int vocab_size, const std::string& config_key,
             int rank = 0, int world = 1);

  // Fills B*T inputs and the B*T targets (inputs shifted by one token), then advances.
  void next_batch(int* inputs, int* targets);
  void reset();

  Position position() const { return {shard_, offset_}; }
  // Throws InputError unless a whole window fits at `p`.
  void seek(const Position& p);

  int64_t total_tokens() const;
  const std::vector<ShardInfo>& shards() const { return shards_; }

 private:
  int64_t window() const { return stride() + 1; }
  int64_t stride() const { return int64_t(world_) * B_ * T_; }
  void advance();

  std::string pattern_;
  std::vector<ShardInfo> shards_;
  int B_, T_, vocab_size_, rank_, world_;
  int64_t shard_ = 0, offset_ = 0;
  std::vector<uint16_t> buffer_;
};

}  // namespace est
