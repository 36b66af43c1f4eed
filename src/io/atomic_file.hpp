#pragma once
// Files that appear whole or not at all: write to PATH.tmp, fsync, rename. A crash mid-write never leaves
// a partial file under the final name, and a good older file is only replaced by a complete new one.
#include <functional>
#include <string>

namespace est {

// write(fd) fills the temporary file; it must return true on success. Failures throw IoError (io/io_error.hpp).
void write_file_atomic(const std::string& path, const std::function<bool(int fd)>& write);
void write_text_atomic(const std::string& path, const std::string& text);
// Renames a written and synced `tmp` to `path`, then syncs the directory, without which the rename may not
// survive a crash. IoError on failure; `tmp` is the caller's to remove.
void rename_durably(const std::string& tmp, const std::string& path);
// write(2) until all n bytes are out; false on error.
bool write_all(int fd, const void* data, size_t n);

}  // namespace est
