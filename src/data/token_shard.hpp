#pragma once
// llm.c's GPT-2 token shard (writer dev/data/data_common.py, reader llmc/dataloader.h): a header of 256
// little-endian int32 (magic, version, token count, the rest zero), then the tokens as little-endian uint16.
#include <cstdint>
#include <string>

namespace est {

constexpr int32_t kShardMagic = 20240520;
constexpr int32_t kShardVersion = 1;
constexpr int64_t kShardHeaderBytes = 1024;

struct ShardInfo {
  std::string path;
  int64_t num_tokens = 0;
};

// Checks magic, version, token count and that the file is exactly header + 2 * num_tokens bytes.
ShardInfo read_shard_header(const std::string& path);

// Tokens [offset, offset + count) of a shard whose header was read; the file is opened per call, so a
// ShardInfo can be shared freely.
void read_shard_tokens(const ShardInfo& shard, int64_t offset, int64_t count, uint16_t* out);

// Writes `path`.tmp, fsyncs it and renames it to `path`, so `path` is either absent or complete.
void write_shard(const std::string& path, const uint16_t* tokens, int64_t n);

}  // namespace est
