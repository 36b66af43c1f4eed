#include "io/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/io_error.hpp"
#include "io/timestamp.hpp"

namespace est {

namespace {

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? name : "unknown host";
}

std::string read_holder(int fd) {
  char buf[512] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s(buf, n > 0 ? size_t(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "a process that has not written its name yet" : s;
}

}  // namespace

RunLock::RunLock(const std::string& dir) : path_((std::filesystem::path(dir) / ".est.lock").string()) {
  std::error_code made;
  std::filesystem::create_directories(dir, made);
  if (made) throw IoError(dir, "creating the output directory", made.message());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path_, "creating the run's lock", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = err == EWOULDBLOCK ? read_holder(fd_) : std::string();
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw IoError(path_, "locking the run directory", std::strerror(err));
    throw InputError(path_, "output.dir",
                     "another run writes to this directory (" + holder +
                         "); wait for it to end, or give this run another output.dir");
  }
  const std::string me = "est pid " + std::to_string(::getpid()) + " on " + host_name() + ", since " + iso_utc_now();
  if (::ftruncate(fd_, 0) != 0 || !write_all(fd_, me.data(), me.size())) {
    const int err = errno;
    release();
    throw IoError(path_, "writing the run's lock", std::strerror(err));
  }
}

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

void RunLock::release() {
  if (fd_ < 0) return;
  // The file stays: removing it would race with a newcomer that has it open and is about to lock it.
  ::close(fd_);
  fd_ = -1;
}

}  // namespace est
