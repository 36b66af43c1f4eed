#include "io/model_file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "input_error.hpp"

namespace est {

int64_t open_model_file(const std::string& path, std::ifstream& in, void* header, int64_t header_bytes) {
  in.open(path, std::ios::binary | std::ios::ate);
  if (!in) throw InputError(path, "file", std::string("cannot open: ") + std::strerror(errno));
  if (!std::filesystem::is_regular_file(path)) throw InputError(path, "file", "not a regular file");
  const int64_t size = in.tellg();
  if (size < header_bytes || !in.seekg(0).read(static_cast<char*>(header), header_bytes))
    throw InputError(path, "size", "the file has " + std::to_string(size) + " bytes, less than the " +
                                       std::to_string(header_bytes) + "-byte header");
  return size;
}

}  // namespace est
