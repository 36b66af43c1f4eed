#include "data/prepare.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string_view>

#include <zlib.h>

#include "data/byte_tokenizer.hpp"
#include "data/token_shard.hpp"
#include "input_error.hpp"

namespace est {
namespace fs = std::filesystem;
namespace {

const char* const kValFlag = "--val-fraction";
const char* const kValKey = "val_fraction";

std::string str(double x) {
  char s[32];
  std::snprintf(s, sizeof s, "%g", x);
  return s;
}

// Every k-th block is validation; 0 means none.
int64_t val_period(double val_fraction) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    throw InputError(kValFlag, kValKey, "must be in [0, 1), got " + str(val_fraction));
  }
  if (val_fraction == 0.0) return 0;
  const int64_t k = std::llround(1.0 / val_fraction);
  if (k < 2) {
    throw InputError(kValFlag, kValKey,
                     str(val_fraction) + " sends every block to validation (k = round(1 / " + str(val_fraction) +
                         ") = 1); use at most 2/3");
  }
  return k;
}

// Plain or gzip-compressed: zlib reads either.
std::string read_text(const std::string& path) {
  if (!fs::is_regular_file(path)) {
    throw InputError(path, "file", fs::exists(path) ? "is not a regular file" : "no such file");
  }
  const gzFile in = gzopen(path.c_str(), "rb");
  if (!in) throw InputError(path, "file", "cannot open: " + std::string(std::strerror(errno)));
  std::string text;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(in, buffer, sizeof buffer)) > 0) text.append(buffer, n);
  int code = Z_OK;
  const std::string problem = n < 0 ? gzerror(in, &code) : "";
  gzclose(in);
  if (n < 0) throw InputError(path, "file", "read error: " + problem);
  if (text.empty()) throw InputError(path, "file", "is empty");
  return text;
}

std::string shard_name(const std::string& stem, const char* split, size_t index) {
  char number[32];
  std::snprintf(number, sizeof number, "%06zu", index);
  return stem + "_" + split + "_" + number + ".bin";
}

std::vector<std::string> write_split(const std::vector<uint16_t>& tokens, const fs::path& dir,
                                     const std::string& stem, const char* split, int64_t max_shard_tokens) {
  std::vector<std::string> paths;
  const int64_t n = tokens.size();
  for (int64_t at = 0; at < n; at += max_shard_tokens) {
    paths.push_back((dir / shard_name(stem, split, paths.size())).string());
    write_shard(paths.back(), tokens.data() + at, std::min(max_shard_tokens, n - at));
  }
  // A glob over out_dir would otherwise also pick up the extra shards of an earlier, longer text.
  for (size_t i = paths.size(); fs::remove(dir / shard_name(stem, split, i)); ++i) {
  }
  return paths;
}

}  // namespace

PreparedData prepare_text(const std::vector<std::string>& text_paths, const std::string& out_dir, double val_fraction,
                          const std::string& stem, int64_t max_shard_tokens) {
  if (max_shard_tokens <= 0 || max_shard_tokens > std::numeric_limits<int32_t>::max()) {
    throw std::invalid_argument("prepare_text: max_shard_tokens must be in [1, 2^31 - 1]");
  }
  if (text_paths.empty()) throw InputError("", "--text", "no text file given");
  const int64_t k = val_period(val_fraction);
  std::string text;
  for (const std::string& path : text_paths) text += read_text(path);
  const int64_t blocks = (int64_t(text.size()) + kPrepareBlockBytes - 1) / kPrepareBlockBytes;
  if (k > blocks) {
    throw InputError(text_paths.front(), kValKey,
                     std::to_string(text.size()) + " bytes make " + std::to_string(blocks) + " blocks of " +
                         std::to_string(kPrepareBlockBytes) + " bytes, but validation takes every k-th block with k = " +
                         std::to_string(k) + ", so it would get none");
  }

  std::vector<uint16_t> train, val;
  train.reserve(text.size());
  for (int64_t b = 0; b < blocks; ++b) {
    const auto tokens = encode_bytes(std::string_view(text).substr(b * kPrepareBlockBytes, kPrepareBlockBytes));
    auto& split = (k > 0 && (b + 1) % k == 0) ? val : train;
    split.insert(split.end(), tokens.begin(), tokens.end());
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw InputError(out_dir, "out_dir", "cannot create directory: " + ec.message());
  const std::string name = fs::path(text_paths.front()).filename().string();
  const std::string shard_stem = stem.empty() ? name.substr(0, name.find('.')) : stem;
  PreparedData out;
  out.val = write_split(val, out_dir, shard_stem, "val", max_shard_tokens);
  out.train = write_split(train, out_dir, shard_stem, "train", max_shard_tokens);
  out.val_tokens = val.size();
  out.train_tokens = train.size();
  return out;
}

}  // namespace est
