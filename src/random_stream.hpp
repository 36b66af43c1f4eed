#pragma once
// Host-side random streams on Philox (kernels/philox.hpp): a stream is named by its counter, so any draw can be
// reproduced from (key, what it is for) alone: the same on every rank, and after a restart at any point.
#include <cstdint>

#include "philox.hpp"

namespace est {

// Successive 32-bit words of one stream. Philox key: `key` (a seed); counter: low 64 bits `major` (a step, an
// epoch), high 64 bits purpose (8 bits) | stream (24 bits) | block index (32 bits).
class RandomStream {
 public:
  RandomStream(uint64_t key, uint64_t major, uint32_t purpose, uint32_t stream)
      : key_(key), major_(major), id_((uint64_t(purpose) << 56) | (uint64_t(stream & 0xFFFFFFu) << 32)) {}

  uint32_t next() {
    if (used_ == 4) {
      words_ = philox4x32(key_, major_, id_ | block_++);
      used_ = 0;
    }
    return words_.v[used_++];
  }

  // Uniform in [0, bound) with no modulo bias: Lemire's multiply-shift, rejecting the short low range.
  uint32_t below(uint32_t bound) {
    uint64_t m = uint64_t(next()) * bound;
    if (static_cast<uint32_t>(m) < bound) {
      const uint32_t threshold = (0u - bound) % bound;
      while (static_cast<uint32_t>(m) < threshold) m = uint64_t(next()) * bound;
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // Uniform in (0, 1], so `uniform() <= 1` always holds.
  double uniform() {
    const uint64_t hi = next();
    return uniform_from_u64((hi << 32) | next());
  }

 private:
  uint64_t key_, major_, id_;
  uint32_t block_ = 0;
  Philox4 words_{};
  int used_ = 4;
};

}  // namespace est
