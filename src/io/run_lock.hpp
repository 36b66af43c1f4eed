#pragma once
// A run directory has one writer: `est train` holds an flock on DIR/.est.lock while it runs. A second run on the
// same directory (a user who starts it twice, a requeued job that overlaps its predecessor) is refused with the
// holder's host, pid and start time, which the file records. The kernel drops an flock when its process dies, so a
// lock file left by a killed run is taken over without any clean-up.
#include <string>

namespace est {

class RunLock {
 public:
  RunLock() = default;
  // Creates `dir` if needed and takes its lock; InputError(DIR/.est.lock, "output.dir", ...) while another
  // process holds it, IoError when the directory or the file cannot be made.
  explicit RunLock(const std::string& dir);
  ~RunLock() { release(); }
  RunLock(RunLock&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.fd_ = -1; }
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  bool held() const { return fd_ >= 0; }
  void release();

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace est
