// The llm.c model-file reader (io/llmc_model.cpp) on arbitrary bytes as a model file: magic, version, shape and
// the size the shape implies.
#include <cstdint>

#include "fuzz_util.hpp"
#include "io/llmc_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = est::fuzz::scratch_file("model.bin", data, size);
  est::fuzz::attempt([&] { est::read_llmc_header(path); });
  return 0;
}
