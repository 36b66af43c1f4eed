#pragma once
// llm.c model files (gpt2_124M.bin, model_%08d.bin): a 1024-byte header of 256 little-endian int32 followed
// by the 16 parameter tensors in ParameterLayout order. est reads and writes version 3 (fp32, padded vocab).
#include <string>
#include <vector>

#include "model/model.hpp"
#include "model/shape.hpp"

namespace est {

// Whether `path` starts with llm.c's model magic (false too when it cannot be read): how a model file of
// unknown format is told from a llama2.c one, whose first field is a width.
bool has_llmc_magic(const std::string& path);

// The shape in the header of `path`, after checking magic, version, sizes and that the file holds exactly
// the parameters the header promises. Throws InputError naming the header field.
ModelShape read_llmc_header(const std::string& path);

// Loads the parameters of `path` into `model` (this rank's share of them), whose shape must equal the file's.
void load_llmc_model(const std::string& path, Model& model);

// Writes the unsplit model's parameters (GPT2::gather_params) to `path` through path + ".tmp", so `path` is
// either the old file or the complete new one.
void save_llmc_model(const std::string& path, const ModelShape& shape, const std::vector<float>& params);

}  // namespace est
