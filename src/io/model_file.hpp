#pragma once
// What the readers of llm.c's and llama2.c's model files share: opening one and reading its fixed-size header.
#include <cstdint>
#include <fstream>
#include <string>

namespace est {

// Opens `path` into `in`, reads its first `header_bytes` bytes into `header` and returns the file's size in
// bytes. A file that cannot be opened, is not a regular file or is shorter than the header is one InputError
// naming it.
int64_t open_model_file(const std::string& path, std::ifstream& in, void* header, int64_t header_bytes);

}  // namespace est
