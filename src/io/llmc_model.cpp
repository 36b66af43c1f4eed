#include "io/llmc_model.hpp"

#include <array>
#include <cstdint>
#include <fstream>
#include <vector>

#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/model_file.hpp"

namespace est {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "llm.c files are little-endian and are read raw");

constexpr int32_t kMagic = 20240326;
constexpr int32_t kVersionFp32 = 3;
constexpr int32_t kVersionBf16 = 5;
constexpr int64_t kHeaderBytes = 1024;

using Header = std::array<int32_t, kHeaderBytes / sizeof(int32_t)>;

enum Slot { MAGIC = 0, VERSION = 1 };

// The header slots that define the shape, named as llm.c names them.
struct ShapeField {
  int slot;
  const char* name;
  int ModelShape::*member;
};
constexpr ShapeField kShapeFields[] = {
    {2, "max_seq_len", &ModelShape::max_seq_len}, {3, "vocab_size", &ModelShape::vocab_size},
    {4, "num_layers", &ModelShape::n_layer},      {5, "num_heads", &ModelShape::n_head},
    {6, "channels", &ModelShape::n_embd},         {7, "padded_vocab_size", &ModelShape::padded_vocab_size},
};

void check_version(const std::string& path, int32_t version) {
  if (version == kVersionBf16)
    throw InputError(path, "version", "version 5 (bf16) is not supported; convert the model to fp32 (version 3)");
  if (version != kVersionFp32)
    throw InputError(path, "version",
                     "unsupported version " + std::to_string(version) + "; est reads version 3 (fp32)");
}

ModelShape shape_from(const std::string& path, const Header& h) {
  ModelShape s;
  for (const ShapeField& f : kShapeFields) {
    if (h[f.slot] <= 0) throw InputError(path, f.name, "must be positive, got " + std::to_string(h[f.slot]));
    s.*f.member = h[f.slot];
  }
  if (s.n_embd % s.n_head != 0)
    throw InputError(path, "channels",
                     std::to_string(s.n_embd) + " is not a multiple of num_heads " + std::to_string(s.n_head));
  if (s.padded_vocab_size < s.vocab_size)
    throw InputError(path, "padded_vocab_size",
                     std::to_string(s.padded_vocab_size) + " is smaller than vocab_size " +
                         std::to_string(s.vocab_size));
  return s;
}

// ParameterLayout's count, in double: its int64 products could overflow for a garbage header.
double approx_param_count(const ModelShape& s) {
  const double C = s.n_embd;
  return (double(s.padded_vocab_size) + s.max_seq_len) * C + s.n_layer * (12 * C * C + 13 * C) + 2 * C;
}

void check_size(const std::string& path, const ModelShape& s, int64_t actual) {
  const std::string got = ", file has " + std::to_string(actual) + " bytes";
  if (kHeaderBytes + 4 * approx_param_count(s) > 0x1p62)
    throw InputError(path, "size", "header describes a model of more than 2^62 bytes" + got);
  const int64_t n = ParameterLayout(s).total;
  const int64_t expected = kHeaderBytes + 4 * n;
  if (actual != expected)
    throw InputError(path, "size",
                     "expected " + std::to_string(expected) + " bytes (1024-byte header + " + std::to_string(n) +
                         " fp32 parameters)" + got + (actual < expected ? " (truncated?)" : ""));
}

// Opens `path`, validates its header against the file and leaves `in` at the first parameter.
ModelShape open_model(const std::string& path, std::ifstream& in) {
  Header h{};
  const int64_t actual = open_model_file(path, in, h.data(), kHeaderBytes);
  if (h[MAGIC] != kMagic)
    throw InputError(path, "magic",
                     "expected " + std::to_string(kMagic) + " (llm.c model file), got " + std::to_string(h[MAGIC]));
  check_version(path, h[VERSION]);
  const ModelShape s = shape_from(path, h);
  check_size(path, s, actual);
  return s;
}

void check_same_shape(const std::string& path, const ModelShape& file, const ModelShape& model) {
  for (const ShapeField& f : kShapeFields)
    if (file.*f.member != model.*f.member)
      throw InputError(path, f.name,
                       "file has " + std::to_string(file.*f.member) + ", model has " +
                           std::to_string(model.*f.member));
}

// llm.c stores every matrix (out, in); est keeps the output projections (in, out) (parameters.hpp). Converts
// a whole parameter buffer between the two, tensor by tensor and layer by layer.
std::vector<float> reorient(const ParameterLayout& layout, int n_layer, const float* from, bool to_llmc) {
  std::vector<float> to(from, from + layout.total);
  for (const ParamSpec& p : layout.specs) {
    if (!p.transposed) continue;
    const int64_t rows = p.shape[1], cols = p.shape[2];  // as est stores it
    for (int l = 0; l < n_layer; ++l) {
      const float* src = from + p.offset + l * rows * cols;
      float* dst = to.data() + p.offset + l * rows * cols;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          if (to_llmc)
            dst[c * rows + r] = src[r * cols + c];
          else
            dst[r * cols + c] = src[c * rows + r];
        }
    }
  }
  return to;
}

Header header_for(const ModelShape& s) {
  Header h{};
  h[MAGIC] = kMagic;
  h[VERSION] = kVersionFp32;
  for (const ShapeField& f : kShapeFields) h[f.slot] = s.*f.member;
  return h;
}

}  // namespace

bool has_llmc_magic(const std::string& path) {
  int32_t magic = 0;
  std::ifstream in(path, std::ios::binary);
  return in.read(reinterpret_cast<char*>(&magic), sizeof magic) && magic == kMagic;
}

ModelShape read_llmc_header(const std::string& path) {
  std::ifstream in;
  return open_model(path, in);
}

void load_llmc_model(const std::string& path, Model& model) {
  std::ifstream in;
  check_same_shape(path, open_model(path, in), model.shape());
  // Read into host memory of our own, so a failed read leaves the model intact.
  const ParameterLayout whole(model.shape());
  std::vector<float> file(whole.total);
  if (!in.read(reinterpret_cast<char*>(file.data()), static_cast<std::streamsize>(file.size() * sizeof(float))))
    throw InputError(path, "file", "read of the parameters failed");
  const std::vector<float> ours = reorient(whole, model.shape().n_layer, file.data(), false);
  Buffer global("llmc_params", ours.size());
  Kokkos::deep_copy(global, Kokkos::View<const float*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>(
                                ours.data(), ours.size()));
  model.import_params(global);
}

void save_llmc_model(const std::string& path, const ModelShape& shape, const std::vector<float>& params) {
  const std::vector<float> file = reorient(ParameterLayout(shape), shape.n_layer, params.data(), true);
  const Header h = header_for(shape);
  write_file_atomic(path, [&](int fd) {
    return write_all(fd, h.data(), sizeof(Header)) && write_all(fd, file.data(), file.size() * sizeof(float));
  });
}

}  // namespace est
