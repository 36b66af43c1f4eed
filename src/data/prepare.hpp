#pragma once
// Text files -> llm.c token shards with the byte tokenizer, for runs that need no GPT-2 tokenizer. Inputs may be
// gzip-compressed (Debian ships dictionaries as dictzip, e.g. dict-gcide's gcide.dict.dz); they are read as one text
// in the order given.
#include <cstdint>
#include <string>
#include <vector>

namespace est {

// The text is cut into blocks of this many bytes and every k-th block, k = round(1 / val_fraction), goes to
// validation, so validation samples the whole text rather than its end.
constexpr int64_t kPrepareBlockBytes = 16 * 1024;
// llm.c's shard size.
constexpr int64_t kMaxShardTokens = 100'000'000;

struct PreparedData {
  std::vector<std::string> train, val;  // shard paths in order
  int64_t train_tokens = 0, val_tokens = 0;
};

// Requires 0 <= val_fraction < 1 (0: no validation shard). Writes <stem>_val_%06d.bin and
// <stem>_train_%06d.bin into out_dir, created if needed; an empty stem is the first text file's name up to its
// first dot.
PreparedData prepare_text(const std::vector<std::string>& text_paths, const std::string& out_dir, double val_fraction,
                          const std::string& stem = "", int64_t max_shard_tokens = kMaxShardTokens);

}  // namespace est
