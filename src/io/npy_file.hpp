#pragma once
// NumPy .npy files (format 1.0) of one little-endian float32 matrix, C order: what numpy.load reads back as a
// (rows, cols) array. Written through a temporary file, so the path is either old or complete.
#include <cstdint>
#include <string>

namespace est {

void write_npy(const std::string& path, const float* data, int64_t rows, int64_t cols);

}  // namespace est
