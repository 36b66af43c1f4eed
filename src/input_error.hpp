#pragma once
// Bad input (config, data, checkpoint, command line): one clear line naming the file and the key or field.
// The command line turns it into exit status 2 before anything is written to the output directory.
#include <stdexcept>
#include <string>

namespace est {

class InputError : public std::runtime_error {
 public:
  InputError(const std::string& file, const std::string& key, const std::string& message)
      : std::runtime_error(format(file, key, message)), file_(file), key_(key) {}

  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }

 private:
  static std::string format(const std::string& file, const std::string& key, const std::string& message) {
    std::string s = file.empty() ? std::string() : file + ": ";
    if (!key.empty()) s += key + ": ";
    return s + message;
  }
  std::string file_, key_;
};

}  // namespace est
