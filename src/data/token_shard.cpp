#include "data/token_shard.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "input_error.hpp"
#include "io/atomic_file.hpp"

namespace est {
namespace {

// Header and tokens go between file and memory as raw bytes.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "token shards are little-endian");

constexpr int kHeaderInts = kShardHeaderBytes / sizeof(int32_t);

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string errno_text() { return std::strerror(errno); }

Fd open_for_reading(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw InputError(path, "file", "cannot open: " + errno_text());
  return fd;
}

void read_exact(const Fd& fd, const std::string& path, void* out, int64_t bytes, int64_t at) {
  auto* p = static_cast<char*>(out);
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t r = ::pread(fd.get(), p + done, bytes - done, at + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw InputError(path, "file", "read error: " + errno_text());
    if (r == 0) {
      throw InputError(path, "size", "short read: wanted bytes [" + std::to_string(at) + ", " +
                                         std::to_string(at + bytes) + "), the file ends at byte " +
                                         std::to_string(at + done));
    }
    done += r;
  }
}

}  // namespace

ShardInfo read_shard_header(const std::string& path) {
  const Fd fd = open_for_reading(path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw InputError(path, "file", "cannot stat: " + errno_text());
  if (!S_ISREG(st.st_mode)) throw InputError(path, "file", "not a regular file");
  const int64_t size = st.st_size;
  if (size < kShardHeaderBytes) {
    throw InputError(path, "size", "truncated: " + std::to_string(size) + " bytes, shorter than the " +
                                       std::to_string(kShardHeaderBytes) + "-byte header");
  }

  int32_t header[kHeaderInts];
  read_exact(fd, path, header, kShardHeaderBytes, 0);
  if (header[0] != kShardMagic) {
    throw InputError(path, "magic", "found " + std::to_string(header[0]) + ", expected " +
                                        std::to_string(kShardMagic) + " (llm.c GPT-2 token shard)");
  }
  if (header[1] != kShardVersion) {
    throw InputError(path, "version",
                     "found " + std::to_string(header[1]) + ", expected " + std::to_string(kShardVersion));
  }
  const int64_t ntok = header[2];
  if (ntok <= 0) throw InputError(path, "ntok", "found " + std::to_string(ntok) + ", expected a positive count");

  const int64_t expected = kShardHeaderBytes + int64_t(sizeof(uint16_t)) * ntok;
  if (size != expected) {
    throw InputError(path, "size",
                     std::string(size < expected ? "truncated" : "trailing data") + ": expected " +
                         std::to_string(expected) + " bytes (1024 + 2 * ntok, ntok = " + std::to_string(ntok) +
                         "), found " + std::to_string(size) + " bytes");
  }
  return {path, ntok};
}

void read_shard_tokens(const ShardInfo& shard, int64_t offset, int64_t count, uint16_t* out) {
  if (offset < 0 || count < 0 || offset + count > shard.num_tokens) {
    throw std::out_of_range(shard.path + ": tokens [" + std::to_string(offset) + ", " +
                            std::to_string(offset + count) + ") outside the shard's " +
                            std::to_string(shard.num_tokens) + " tokens");
  }
  const Fd fd = open_for_reading(shard.path);
  read_exact(fd, shard.path, out, int64_t(sizeof(uint16_t)) * count,
             kShardHeaderBytes + int64_t(sizeof(uint16_t)) * offset);
}

void write_shard(const std::string& path, const uint16_t* tokens, int64_t n) {
  if (n <= 0 || n > std::numeric_limits<int32_t>::max()) {
    throw std::invalid_argument(path + ": a shard holds 1 to 2^31 - 1 tokens, not " + std::to_string(n));
  }
  const int32_t header[kHeaderInts] = {kShardMagic, kShardVersion, static_cast<int32_t>(n)};
  write_file_atomic(path, [&](int fd) {
    return write_all(fd, header, kShardHeaderBytes) && write_all(fd, tokens, sizeof(uint16_t) * size_t(n));
  });
}

}  // namespace est
