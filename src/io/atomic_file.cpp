#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/io_error.hpp"

namespace est {

namespace {

IoError io_error(const std::string& path, const std::string& what) { return IoError(path, what, std::strerror(errno)); }

// A rename is durable only once the directory holding it is synced.
void sync_parent_dir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw io_error(dir, "opening the directory to sync it");
  // Some file systems cannot sync a directory (EINVAL); the file itself is already synced.
  const bool ok = ::fsync(fd) == 0 || errno == EINVAL;
  ::close(fd);
  if (!ok) throw io_error(dir, "syncing the directory");
}

}  // namespace

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void write_file_atomic(const std::string& path, const std::function<bool(int fd)>& write) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error(path, "creating its temporary " + tmp);
  // close() can report a deferred write error, so it counts too.
  bool ok = write(fd) && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  try {
    if (!ok) throw io_error(path, "writing it");
    rename_durably(tmp, path);
  } catch (const IoError&) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void rename_durably(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw io_error(path, "renaming " + tmp + " to it");
  sync_parent_dir(path);
}

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, [&](int fd) { return write_all(fd, text.data(), text.size()); });
}

}  // namespace est
