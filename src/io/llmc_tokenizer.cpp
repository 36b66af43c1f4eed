#include "io/llmc_tokenizer.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "input_error.hpp"

namespace est {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "llm.c files are little-endian and are read raw");

constexpr uint32_t kMagic = 20240328;
constexpr int64_t kHeaderBytes = 1024;
enum Slot { MAGIC = 0, VERSION = 1, VOCAB_SIZE = 2 };

std::array<uint32_t, kHeaderBytes / 4> read_header(const std::string& path, std::ifstream& in) {
  in.open(path, std::ios::binary);
  if (!in) throw InputError(path, "file", std::string("cannot open: ") + std::strerror(errno));
  if (!std::filesystem::is_regular_file(path)) throw InputError(path, "file", "not a regular file");
  std::array<uint32_t, kHeaderBytes / 4> h{};
  if (!in.read(reinterpret_cast<char*>(h.data()), kHeaderBytes))
    throw InputError(path, "size", "the file is shorter than the 1024-byte header");
  if (h[MAGIC] != kMagic)
    throw InputError(path, "magic",
                     "expected " + std::to_string(kMagic) + " (llm.c tokenizer file), got " + std::to_string(h[MAGIC]));
  if (h[VERSION] != 1 && h[VERSION] != 2)
    throw InputError(path, "version", "unsupported version " + std::to_string(h[VERSION]) + " (llm.c writes 1 and 2)");
  // Each token takes at least two bytes, which bounds a sane vocabulary by the file's size.
  const auto size = std::filesystem::file_size(path);
  if (h[VOCAB_SIZE] == 0 || kHeaderBytes + 2 * uint64_t(h[VOCAB_SIZE]) > size)
    throw InputError(path, "vocab_size",
                     std::to_string(h[VOCAB_SIZE]) + " tokens do not fit in a file of " + std::to_string(size) + " bytes");
  return h;
}

}  // namespace

std::vector<std::string> read_llmc_tokenizer(const std::string& path) {
  std::ifstream in;
  const auto h = read_header(path, in);
  std::vector<std::string> tokens(h[VOCAB_SIZE]);
  for (size_t i = 0; i < tokens.size(); ++i) {
    unsigned char length = 0;
    if (!in.read(reinterpret_cast<char*>(&length), 1))
      throw InputError(path, "size", "the file ends before token " + std::to_string(i) + " of " +
                                         std::to_string(tokens.size()));
    if (length == 0) throw InputError(path, "token " + std::to_string(i), "has length 0");
    tokens[i].resize(length);
    if (!in.read(tokens[i].data(), length))
      throw InputError(path, "size", "the file ends inside token " + std::to_string(i));
  }
  if (in.peek() != std::char_traits<char>::eof())
    throw InputError(path, "size", "bytes follow the last of the " + std::to_string(tokens.size()) + " tokens");
  return tokens;
}

}  // namespace est
