#pragma once
// Text file -> llm.c token shards with the byte tokenizer, for runs that need no GPT-2 tokenizer.
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
// <stem>_train_%06d.bin into out_dir, created if needed, where stem is the text file's name without extension.
PreparedData prepare_text(const std::string& text_path, const std::string& out_dir, double val_fraction,
                          int64_t max_shard_tokens = kMaxShardTokens);

}  // namespace est
