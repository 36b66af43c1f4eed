#pragma once
// Failures to write a file, in the words the command line prints: "FILE: what was being written: the OS reason".
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

namespace est {

class IoError : public std::runtime_error {
 public:
  IoError(const std::string& file, const std::string& what, const std::string& reason)
      : std::runtime_error(file + ": " + what + ": " + reason), file_(file) {}
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// Why writing `path` failed, in the OS's words: what a small write beside `path` gets now (a full disk, a quota, a
// read-only or removed directory), else `err` (the errno the failure left) when only a file system gives it, else
// the file-size limit when `path` has reached it, else `fallback`. Call it before removing what the failed write
// left, or the space it took is free again.
std::string write_failure_reason(const std::string& path, int err, const std::string& fallback);

// The failure of a write of `path`, as an exception to hand on: IoError(path, what, write_failure_reason(...)).
std::exception_ptr write_failure(const std::string& path, const std::string& what, int err, const std::string& detail);

// Throws IoError(path, what, "No space left on device (needs 30.1 MB, 12.0 MB free)") when the file system that will
// hold `path` has fewer than `bytes` free.
void require_free_space(const std::string& path, uint64_t bytes, const std::string& what);

}  // namespace est
