#include "io/npy_file.hpp"

#include "io/atomic_file.hpp"

namespace est {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the matrix is written raw as '<f4'");

void write_npy(const std::string& path, const float* data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  // The magic, version and length (10 bytes) and the header end on a multiple of 64, the header with '\n'.
  const size_t padded = (10 + header.size() + 1 + 63) / 64 * 64 - 10;
  header.append(padded - 1 - header.size(), ' ');
  header += '\n';
  const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(padded & 0xFF),
                                      static_cast<unsigned char>(padded >> 8)};
  write_file_atomic(path, [&](int fd) {
    return write_all(fd, preamble, sizeof preamble) && write_all(fd, header.data(), header.size()) &&
           write_all(fd, data, size_t(rows * cols) * sizeof(float));
  });
}

}  // namespace est
