#include "io/io_error.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "bytes_text.hpp"
#include "io/atomic_file.hpp"

namespace est {

namespace {

std::string directory_of(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// Errors only a file system gives (other errnos a failed library call leaves may come from its own lookups).
bool names_file_system_condition(int err) {
  return err == ENOSPC || err == EDQUOT || err == EFBIG || err == EROFS || err == EIO;
}

// Whether `path` has grown to within 1 MiB of the process's file-size limit (ulimit -f), whose writes then fail.
bool at_file_size_limit(const std::string& path, uint64_t& limit) {
  struct rlimit rl {};
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || ::getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return false;
  limit = rl.rlim_cur;
  return size + (1u << 20) >= limit;
}

// The errno of writing and syncing 64 KiB beside `path` (0 when that works), the probe removed again.
int probe_write(const std::string& path) {
  const std::string probe = directory_of(path) + "/.est-write-probe-" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  const std::vector<char> block(1 << 16, 0);
  errno = 0;
  int err = write_all(fd, block.data(), block.size()) && ::fsync(fd) == 0 ? 0 : (errno ? errno : EIO);
  if (::close(fd) != 0 && err == 0) err = errno;
  ::unlink(probe.c_str());
  return err;
}

}  // namespace

std::string write_failure_reason(const std::string& path, int err, const std::string& fallback) {
  if (const int probed = probe_write(path)) return std::strerror(probed);
  if (names_file_system_condition(err)) return std::strerror(err);
  uint64_t limit = 0;
  if (at_file_size_limit(path, limit))
    return std::string(std::strerror(EFBIG)) + " (the file-size limit, ulimit -f, is " +
           std::to_string(limit >> 20) + " MiB)";
  return fallback;
}

std::exception_ptr write_failure(const std::string& path, const std::string& what, int err, const std::string& detail) {
  return std::make_exception_ptr(IoError(path, what, write_failure_reason(path, err, detail)));
}

void require_free_space(const std::string& path, uint64_t bytes, const std::string& what) {
  struct statvfs fs {};
  if (::statvfs(directory_of(path).c_str(), &fs) != 0) return;  // the write itself will say what is wrong
  const uint64_t free = uint64_t(fs.f_bavail) * fs.f_frsize;
  if (free >= bytes) return;
  throw IoError(path, what, std::string(std::strerror(ENOSPC)) + " (needs " + format_bytes(double(bytes)) + ", " +
                                format_bytes(double(free)) + " free)");
}

}  // namespace est
