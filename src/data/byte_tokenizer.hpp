#pragma once
// Byte-level tokenizer for small experiments: a token id is a byte value, so any file round-trips exactly.
// There are no special tokens (no end-of-text), hence documents are not delimited and the vocabulary is 256.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace est {

constexpr int kByteVocabSize = 256;

inline std::vector<uint16_t> encode_bytes(std::string_view bytes) {
  std::vector<uint16_t> tokens(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) tokens[i] = static_cast<unsigned char>(bytes[i]);
  return tokens;
}

inline std::string decode_bytes(const uint16_t* tokens, size_t n) {
  std::string bytes(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] >= kByteVocabSize) {
      throw std::out_of_range("byte tokenizer: token " + std::to_string(tokens[i]) + " is not a byte");
    }
    bytes[i] = static_cast<char>(tokens[i]);
  }
  return bytes;
}

inline std::string decode_bytes(const std::vector<uint16_t>& tokens) {
  return decode_bytes(tokens.data(), tokens.size());
}

}  // namespace est
