#pragma once
// What every harness shares: a scratch directory for the files est reads by path, and the rule that a thrown
// error is est's answer to bad input, not a finding.
#include <stdlib.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace est::fuzz {

// A directory of this process's own under TMPDIR (so parallel fuzzers never share a file), removed at exit.
inline const std::string& scratch_dir() {
  struct Dir {
    std::string path = (std::filesystem::temp_directory_path() / "est_fuzz_XXXXXX").string();
    Dir() {
      if (!::mkdtemp(path.data())) throw std::runtime_error("mkdtemp failed in " + path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// An empty directory for one input's files, so that nothing an earlier input left beside them (a resumed trace's
// copy, say) changes how this one reads.
inline std::string fresh_dir() {
  const std::string dir = scratch_dir() + "/input";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  return dir;
}

// Writes the bytes to `name` in the scratch directory and returns its path.
inline std::string scratch_file(const std::string& name, const void* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(static_cast<const char*>(data), std::streamsize(size));
  return path;
}

// est reports bad input by throwing: InputError for what it checks itself, std exceptions for what HDF5 or the
// C++ library refuse; either is one "est: error" line. A crash, a sanitizer report, a leak or a hang is a finding.
template <class F>
void attempt(F&& f) {
  try {
    f();
  } catch (const std::exception&) {
  }
}

}  // namespace est::fuzz
