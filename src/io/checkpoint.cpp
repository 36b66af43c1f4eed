#include "io/checkpoint.hpp"

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

#include "collective_error.hpp"
#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/hdf5_handle.hpp"
#include "io/hdf5_util.hpp"
#include "io/io_error.hpp"
#include "parallel/failure_agreement.hpp"

namespace est {

namespace {

// The three tensors kept per parameter, as groups of the file.
constexpr std::array<const char*, 3> kGroups = {"params", "adamw_m", "adamw_v"};

// ---- checksums: a sum over rows of a hash of (row index, row bytes), so every layout can compute its part.

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_row(const float* data, int64_t n) {
  uint64_t h = 0x51ED270B27E9A11Full ^ uint64_t(n);
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  const int64_t size = n * int64_t(sizeof(float));
  int64_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes + i, 8);
    h = (h ^ splitmix(w)) * 0x9FB21C651E98DF25ull;
  }
  if (i < size) {
    uint64_t w = 0;
    std::memcpy(&w, bytes + i, size_t(size - i));
    h = (h ^ splitmix(w)) * 0x9FB21C651E98DF25ull;
  }
  return splitmix(h);
}

uint64_t row_term(int64_t row, const float* data, int64_t cols) {
  return splitmix(uint64_t(row) ^ splitmix(hash_row(data, cols)));
}

// ---- geometry: a tensor as (layers x rows x cols), split by rows across the tensor-parallel ranks.

struct Geometry {
  int64_t layers = 1, rows = 0, cols = 1;  // of the unsplit tensor
  std::vector<hsize_t> dims;              // its dataset's shape
};

Geometry geometry(const ParameterLayout& whole, int id) {
  const ParamSpec& spec = whole[id];
  Geometry g;
  g.layers = whole.per_layer(id) ? spec.shape[0] : 1;
  g.rows = whole.rows(id);
  g.cols = spec.size / g.layers / g.rows;
  for (int64_t d : spec.shape) g.dims.push_back(hsize_t(d));
  return g;
}

// Whether a dataset's recorded (layers, rows, cols) describe its n values; a damaged file's need not, nor need
// their product fit in 64 bits.
bool describes(const std::vector<int64_t>& geo, int64_t n) {
  if (geo.size() != 3) return false;
  int64_t product = 1;
  for (int64_t g : geo) {
    if (g < 1 || g > n / product) return false;
    product *= g;
  }
  return product == n;
}

// File selection of the given rows in every layer (none when `rows` is empty): runs of consecutive rows become
// one hyperslab block each.
H5Handle select_rows(hid_t dataset, const Geometry& g, const std::vector<int64_t>& rows) {
  H5Handle space(h5_check(H5Dget_space(dataset), "H5Dget_space"), H5Sclose);
  if (rows.empty()) {
    H5Sselect_none(space.get());
    return space;
  }
  bool first = true;
  for (int64_t l = 0; l < g.layers; ++l) {
    for (size_t i = 0; i < rows.size();) {
      size_t j = i + 1;
      while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
      std::vector<hsize_t> start(g.dims.size(), 0), count = g.dims;
      const size_t row_dim = g.layers > 1 ? 1 : 0;
      if (g.layers > 1) {
        start[0] = hsize_t(l);
        count[0] = 1;
      }
      start[row_dim] = hsize_t(rows[i]);
      count[row_dim] = hsize_t(j - i);
      h5_check(H5Sselect_hyperslab(space.get(), first ? H5S_SELECT_SET : H5S_SELECT_OR, start.data(), nullptr,
                                   count.data(), nullptr),
               "H5Sselect_hyperslab");
      first = false;
      i = j;
    }
  }
  return space;
}

H5Handle memory_space(int64_t n) {
  const hsize_t dims = hsize_t(std::max<int64_t>(n, 1));
  H5Handle space(h5_check(H5Screate_simple(1, &dims, nullptr), "H5Screate_simple"), H5Sclose);
  if (n == 0) H5Sselect_none(space.get());
  return space;
}

// The unsplit rows this rank holds of tensor `id`.
std::vector<int64_t> my_rows(const ParameterLayout& layout, int id) {
  std::vector<int64_t> r(layout.rows(id));
  for (int64_t i = 0; i < int64_t(r.size()); ++i) r[i] = layout.global_row(id, i);
  return r;
}

// ---- attributes

H5Handle open_file(const std::string& path, MPI_Comm comm, unsigned flags) {
  H5Handle fapl(h5_check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
  if (comm != MPI_COMM_NULL) H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL);
  // A missing, truncated or foreign file is bad input, reported by us; HDF5's own error stack would only add noise.
  H5Handle f = std::filesystem::is_regular_file(path) ? h5::try_open_file(path, flags, fapl.get()) : H5Handle();
  if (!f.valid()) throw InputError(path, "file", "cannot open as an HDF5 file (missing, truncated or not HDF5)");
  return f;
}

void write_attr(hid_t obj, const char* name, hid_t type, const void* value, hsize_t n = 1) {
  H5Handle space(h5_check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple"), H5Sclose);
  H5Handle attr(h5_check(H5Acreate2(obj, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose);
  h5_check(H5Awrite(attr.get(), type, value), name);
}

void write_string(hid_t obj, const char* name, const std::string& value) {
  H5Handle type(h5_check(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
  H5Tset_size(type.get(), std::max<size_t>(value.size(), 1));
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  H5Handle space(h5_check(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
  H5Handle attr(h5_check(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose);
  h5_check(H5Awrite(attr.get(), type.get(), value.empty() ? "" : value.data()), name);
}

InputError missing(const std::string& path, const char* name) {
  return InputError(path, name, "attribute missing: not an est checkpoint, or damaged");
}

H5Handle open_attr(const std::string& path, hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) throw missing(path, name);
  return H5Handle(h5_check(H5Aopen(obj, name, H5P_DEFAULT), name), H5Aclose);
}

template <class T>
T read_attr(const std::string& path, hid_t obj, const char* name, hid_t type) {
  H5Handle attr = h5::open_scalar_attribute(obj, name, path);
  if (!attr.valid()) throw missing(path, name);
  T value{};
  if (H5Aread(attr.get(), type, &value) < 0) throw InputError(path, name, "unreadable attribute");
  return value;
}

// Checkpoints from before est_strata drew over their writer's TP ranks, the default then.
int strata_of(const std::string& path, hid_t file, int writer_tp) {
  if (H5Aexists(file, "est_strata") <= 0) return writer_tp;
  const int64_t strata = read_attr<int64_t>(path, file, "est_strata", H5T_NATIVE_INT64);
  if (strata < 1 || strata > INT_MAX)
    throw InputError(path, "est_strata", "must be positive, got " + std::to_string(strata));
  return int(strata);
}

template <class T>
std::vector<T> read_values(const std::string& path, hid_t obj, const char* name, hid_t type) {
  H5Handle attr = open_attr(path, obj, name);
  H5Handle space(h5_check(H5Aget_space(attr.get()), name), H5Sclose);
  std::vector<T> v(size_t(H5Sget_simple_extent_npoints(space.get())));
  if (!v.empty() && H5Aread(attr.get(), type, v.data()) < 0) throw InputError(path, name, "unreadable attribute");
  return v;
}

std::string read_string(const std::string& path, hid_t obj, const char* name) {
  const std::optional<std::string> s = h5::read_string_attribute(obj, name, path);
  if (!s) throw missing(path, name);
  return *s;
}

// The model shape fields stored with a checkpoint, named as in the config. Those that came with Llama are
// absent from older (GPT-2) checkpoints and read as 0 there, GPT-2's value.
struct ShapeField {
  const char* name;
  int ModelShape::*member;
  bool optional;
};
constexpr ShapeField kShapeFields[] = {
    {"n_layer", &ModelShape::n_layer, false},   {"n_head", &ModelShape::n_head, false},
    {"n_embd", &ModelShape::n_embd, false},     {"vocab_size", &ModelShape::vocab_size, false},
    {"padded_vocab_size", &ModelShape::padded_vocab_size, false}, {"max_seq_len", &ModelShape::max_seq_len, false},
    {"n_kv_head", &ModelShape::n_kv_head, true}, {"mlp_hidden", &ModelShape::mlp_hidden, true},
};
// Llama's real-valued fields.
struct ShapeReal {
  const char* name;
  float ModelShape::*member;
};
constexpr ShapeReal kShapeReals[] = {{"norm_eps", &ModelShape::norm_eps}, {"rope_theta", &ModelShape::rope_theta}};

std::string dataset_name(int group, const ParamSpec& tensor) { return std::string("/") + kGroups[group] + "/" + tensor.name; }

// This rank's copies of the three tensors per parameter, on the host.
std::array<std::vector<float>, 3> host_tensors(const Model& model, const AdamW& optimizer) {
  std::array<Buffer, 3> device = {model.params(), optimizer.m(), optimizer.v()};
  std::array<std::vector<float>, 3> host;
  for (int g = 0; g < 3; ++g) {
    host[g].resize(device[g].extent(0));
    Kokkos::deep_copy(Kokkos::View<float*, Kokkos::HostSpace, Unmanaged>(host[g].data(), host[g].size()), device[g]);
  }
  return host;
}

// Sum of row terms over the rows this rank holds (layer by layer), for a tensor stored locally as
// (layers x local rows x cols).
uint64_t partial_checksum(const float* local, const Geometry& g, const std::vector<int64_t>& rows) {
  uint64_t sum = 0;
  for (int64_t l = 0; l < g.layers; ++l)
    for (size_t i = 0; i < rows.size(); ++i)
      sum += row_term(l * g.rows + rows[i], local + (l * int64_t(rows.size()) + int64_t(i)) * g.cols, g.cols);
  return sum;
}

// HDF5 has closed the file without syncing it.
void sync_file(const std::string& tmp) {
  const auto fail = [](const std::string& what) { throw std::system_error(errno, std::generic_category(), what); };
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + tmp);
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  if (!synced) fail("cannot sync " + tmp);
}

ModelShape read_shape(const std::string& path, hid_t file) {
  ModelShape s;
  const std::optional<std::string> arch = h5::read_string_attribute(file, "arch", path);
  if (arch && !parse_arch(*arch, s.arch)) throw InputError(path, "arch", "unknown architecture '" + *arch + "'");
  for (const ShapeField& f : kShapeFields) {
    if (f.optional && H5Aexists(file, f.name) <= 0) continue;
    const int64_t v = read_attr<int64_t>(path, file, f.name, H5T_NATIVE_INT64);
    if (v < 0 || v > std::numeric_limits<int>::max()) throw InputError(path, f.name, "out of range: " + std::to_string(v));
    s.*f.member = int(v);
  }
  if (s.arch == Arch::llama) {
    for (const ShapeReal& f : kShapeReals) s.*f.member = float(read_attr<double>(path, file, f.name, H5T_NATIVE_DOUBLE));
    s.tie_embeddings = read_attr<int64_t>(path, file, "tie_embeddings", H5T_NATIVE_INT64) != 0;
  }
  const ShapeProblem bad = shape_problem(s);
  if (!bad.field.empty()) throw InputError(path, bad.field, bad.reason);
  return s;
}

void write_shape(hid_t f, const ModelShape& shape) {
  write_string(f, "arch", arch_name(shape.arch));
  for (const ShapeField& sf : kShapeFields) {
    const int64_t v = shape.*sf.member;
    write_attr(f, sf.name, H5T_NATIVE_INT64, &v);
  }
  if (shape.arch != Arch::llama) return;
  for (const ShapeReal& sf : kShapeReals) {
    const double v = shape.*sf.member;
    write_attr(f, sf.name, H5T_NATIVE_DOUBLE, &v);
  }
  const int64_t tie = shape.tie_embeddings;
  write_attr(f, "tie_embeddings", H5T_NATIVE_INT64, &tie);
}

void check_shape(const std::string& path, hid_t file, const ModelShape& shape) {
  const ModelShape stored = read_shape(path, file);
  if (stored.arch != shape.arch)
    throw InputError(path, "arch", std::string("the checkpoint holds a ") + arch_name(stored.arch) + " model, the config a " +
                                       arch_name(shape.arch) + " one");
  for (const ShapeField& f : kShapeFields)
    if (stored.*f.member != shape.*f.member)
      throw InputError(path, f.name, "the checkpoint has " + std::to_string(stored.*f.member) + ", the model " +
                                         std::to_string(shape.*f.member));
  if (shape.arch != Arch::llama) return;
  for (const ShapeReal& f : kShapeReals)
    if (stored.*f.member != shape.*f.member)
      throw InputError(path, f.name, "the checkpoint has " + std::to_string(stored.*f.member) + ", the model " +
                                         std::to_string(shape.*f.member));
  if (stored.tie_embeddings != shape.tie_embeddings)
    throw InputError(path, "tie_embeddings", std::string("the checkpoint's LM head is ") +
                                                 (stored.tie_embeddings ? "tied" : "untied") + ", the model's is not");
}

void check_kind(const std::string& path, hid_t file) {
  if (read_string(path, file, "est_kind") != "checkpoint") throw InputError(path, "est_kind", "not an est checkpoint");
  const int64_t format = read_attr<int64_t>(path, file, "format_version", H5T_NATIVE_INT64);
  if (format != kCheckpointFormat)
    throw InputError(path, "format_version",
                     "format " + std::to_string(format) + "; this est reads format " + std::to_string(kCheckpointFormat));
}

// A tensor's dataset, of the model's shape: selections are made in the model's shape, and HDF5 reads as many
// start and count entries as the dataset has dimensions, so a damaged file's dataset of another shape must not
// reach them.
H5Handle open_tensor(const std::string& path, hid_t file, const std::string& name, const Geometry& g) {
  H5Handle dataset = h5::open_dataset(file, name, path);
  H5Handle space(h5_check(H5Dget_space(dataset.get()), name + ": H5Dget_space"), H5Sclose);
  std::vector<hsize_t> dims(size_t(std::max(0, H5Sget_simple_extent_ndims(space.get()))));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (dims != g.dims) throw InputError(path, name, "the dataset's shape is not the model's (damaged or foreign file)");
  return dataset;
}

// Reads the selected rows of a dataset (collectively when `dxpl` says so) into `out`.
void read_rows(const std::string& path, hid_t file, const std::string& name, const Geometry& g,
               const std::vector<int64_t>& rows, hid_t dxpl, float* out) {
  H5Handle dataset = open_tensor(path, file, name, g);
  H5Handle file_space = select_rows(dataset.get(), g, rows);
  H5Handle mem = memory_space(g.layers * int64_t(rows.size()) * g.cols);
  h5::QuietErrors quiet;
  if (H5Dread(dataset.get(), H5T_NATIVE_FLOAT, mem.get(), file_space.get(), dxpl, out) < 0)
    throw InputError(path, name, "unreadable (truncated or damaged)");
}

uint64_t stored_checksum(const std::string& path, hid_t file, const std::string& name) {
  H5Handle dataset = h5::open_dataset(file, name, path);
  return read_attr<uint64_t>(path, dataset.get(), "checksum", H5T_NATIVE_UINT64);
}

H5Handle collective_transfer() {
  H5Handle dxpl(h5_check(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate"), H5Pclose);
  H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE);
  return dxpl;
}

}  // namespace

std::string checkpoint_path(const std::string& dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "ckpt_%08lld.h5", static_cast<long long>(step));
  return dir + "/" + name;
}

namespace {

std::vector<std::string> glob_paths(const std::string& pattern) {
  glob_t g{};
  std::vector<std::string> paths;
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) paths.assign(g.gl_pathv, g.gl_pathv + g.gl_pathc);
  ::globfree(&g);
  return paths;
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> paths = glob_paths(dir + "/ckpt_*.h5");
  std::sort(paths.rbegin(), paths.rend());  // zero-padded steps: newest first
  return paths;
}

std::vector<std::string> partial_checkpoints(const std::string& dir) { return glob_paths(dir + "/ckpt_*.h5.tmp"); }

namespace {

// Everything besides the tensors, as attributes of the root.
void write_header(hid_t f, const ModelShape& shape, const AdamW& optimizer, const TrainingState& state) {
  write_string(f, "est_kind", "checkpoint");
  const int64_t ints[] = {kCheckpointFormat, state.step, state.stage, state.data.epoch, state.data.shard,
                          state.data.window, state.tp, state.dp, optimizer.steps_taken(), state.strata};
  const char* int_names[] = {"format_version", "step", "stage", "data_epoch", "data_shard",
                             "data_window", "tp", "dp", "adamw_t", "est_strata"};
  for (size_t i = 0; i < std::size(ints); ++i) write_attr(f, int_names[i], H5T_NATIVE_INT64, &ints[i]);
  write_shape(f, shape);
  write_attr(f, "est_seed", H5T_NATIVE_UINT64, &state.est_seed);
  write_attr(f, "data_seed", H5T_NATIVE_UINT64, &state.data_seed);
  write_attr(f, "flops_so_far", H5T_NATIVE_DOUBLE, &state.flops_so_far);
  write_attr(f, "train_seconds", H5T_NATIVE_DOUBLE, &state.train_seconds);
  const double none = 0;
  write_attr(f, "balancer_state", H5T_NATIVE_DOUBLE, state.balancer.empty() ? &none : state.balancer.data(),
             std::max<hsize_t>(state.balancer.size(), 1));
  const int64_t has_balancer = !state.balancer.empty();
  write_attr(f, "has_balancer_state", H5T_NATIVE_INT64, &has_balancer);
  write_string(f, "config", state.config_yaml);
  write_string(f, "schedule", state.schedule_yaml);
  write_string(f, "orientation",
               shape.arch == Arch::llama
                   ? "est's: matrices (out, in), except attprojw and downw, stored (in, out); qkvw holds q, k, v and "
                     "gateupw gate, up; RoPE pairs rotate-half"
                   : "est's: matrices (out, in) as in llm.c, except attprojw and fcprojw, stored (in, out)");
}

// The file, written collectively by every rank. A rank whose write fails must not leave the others in the next
// collective: after each dataset and at the close all ranks agree, and all unwind together on a failure.
bool write_checkpoint_file(const std::string& tmp, const std::string& what, const Model& model, const AdamW& optimizer,
                           const TrainingState& state, const ProcessGrid& grid) {
  const ParameterLayout whole(model.shape());
  const ParameterLayout& mine = model.layout();
  const auto host = host_tensors(model, optimizer);
  // One data-parallel replica writes; in it, replicated tensors come from its first tensor-parallel rank.
  auto writes = [&](int id) { return grid.dp_rank() == 0 && (mine[id].sharded() || grid.tp_rank() == 0); };
  const int n = whole.count();
  std::vector<uint64_t> checksums(3 * size_t(n), 0);
  for (int g = 0; g < 3; ++g)
    for (int id = 0; id < n; ++id)
      if (writes(id))
        checksums[g * n + id] =
            partial_checksum(host[g].data() + mine[id].offset, geometry(whole, id), my_rows(mine, id));
  MPI_Allreduce(MPI_IN_PLACE, checksums.data(), int(checksums.size()), MPI_UINT64_T, MPI_SUM, grid.world_mpi());

  bool collective = true;
  H5Handle fapl(h5_check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
  H5Pset_fapl_mpio(fapl.get(), grid.world_mpi(), MPI_INFO_NULL);
  const hid_t created = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  raise_if_any_failed(grid.world_mpi(), created < 0 ? write_failure(tmp, what, errno, "HDF5 cannot create it")
                                                    : std::exception_ptr());
  H5Handle file(created, H5Fclose);
  const hid_t f = file.get();
  write_header(f, model.shape(), optimizer, state);
  H5Handle dxpl = collective_transfer();
  for (int g = 0; g < 3; ++g) {
    H5Handle group(h5_check(H5Gcreate2(f, kGroups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), kGroups[g]), H5Gclose);
    for (int id = 0; id < n; ++id) {
      const Geometry geo = geometry(whole, id);
      H5Handle space(h5_check(H5Screate_simple(int(geo.dims.size()), geo.dims.data(), nullptr), "space"), H5Sclose);
      H5Handle dataset(h5_check(H5Dcreate2(group.get(), whole[id].name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                           H5P_DEFAULT, H5P_DEFAULT),
                                whole[id].name),
                       H5Dclose);
      write_attr(dataset.get(), "checksum", H5T_NATIVE_UINT64, &checksums[g * n + id]);
      const int64_t geo_attrs[] = {geo.layers, geo.rows, geo.cols};
      write_attr(dataset.get(), "layers_rows_cols", H5T_NATIVE_INT64, geo_attrs, 3);
      const std::vector<int64_t> rows = writes(id) ? my_rows(mine, id) : std::vector<int64_t>{};
      H5Handle file_space = select_rows(dataset.get(), geo, rows);
      H5Handle mem = memory_space(geo.layers * int64_t(rows.size()) * geo.cols);
      const herr_t written = H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, mem.get(), file_space.get(), dxpl.get(),
                                      host[g].data() + mine[id].offset);
      raise_if_any_failed(grid.world_mpi(),
                          written < 0 ? write_failure(tmp, what, errno, "HDF5 cannot write " + dataset_name(g, whole[id]))
                                      : std::exception_ptr());
      uint32_t local_cause = 0, global_cause = 0;
      H5Pget_mpio_no_collective_cause(dxpl.get(), &local_cause, &global_cause);
      collective = collective && global_cause == H5D_MPIO_COLLECTIVE;
    }
  }
  // The metadata reaches the file at the close, so it can fail there too.
  const herr_t closed = H5Fclose(file.release());
  raise_if_any_failed(grid.world_mpi(), closed < 0 ? write_failure(tmp, what, errno, "HDF5 cannot close it")
                                                   : std::exception_ptr());
  return collective;
}

// The tensors' bytes (three per parameter) and a margin for the metadata.
uint64_t checkpoint_bytes(const ModelShape& shape) {
  return uint64_t(ParameterLayout(shape).total) * 3 * sizeof(float) + (uint64_t(1) << 20);
}

}  // namespace

bool save_checkpoint(const std::string& path, const Model& model, const AdamW& optimizer, const TrainingState& state,
                     const ProcessGrid& grid) {
  const std::string tmp = path + ".tmp";
  const std::string what = "writing the checkpoint of step " + std::to_string(state.step);
  try {
    std::exception_ptr full;
    if (grid.world_rank() == 0) {
      try {
        require_free_space(tmp, checkpoint_bytes(model.shape()), what);
      } catch (const IoError&) {
        full = std::current_exception();
      }
    }
    raise_if_any_failed(grid.world_mpi(), full);
    const bool collective = write_checkpoint_file(tmp, what, model, optimizer, state, grid);
    std::exception_ptr renamed;
    if (grid.world_rank() == 0) {
      try {
        sync_file(tmp);
        rename_durably(tmp, path);
      } catch (const IoError&) {
        renamed = std::current_exception();
      } catch (const std::system_error& e) {
        renamed = write_failure(tmp, what, e.code().value(), e.what());
      }
    }
    raise_if_any_failed(grid.world_mpi(), renamed);
    return collective;
  } catch (const CollectiveError&) {
    // Every rank has closed the file by now; the newest good checkpoint stays as it was.
    MPI_Barrier(grid.world_mpi());
    if (grid.world_rank() == 0) ::unlink(tmp.c_str());
    throw;
  }
}

TrainingState load_checkpoint(const std::string& path, Model& model, AdamW& optimizer, const ProcessGrid& grid) {
  const ModelShape& shape = model.shape();
  const ParameterLayout whole(shape);
  const ParameterLayout& mine = model.layout();
  H5Handle file = open_file(path, grid.world_mpi(), H5F_ACC_RDONLY);
  const hid_t f = file.get();
  check_kind(path, f);
  check_shape(path, f, shape);
  H5Handle dxpl = collective_transfer();

  // Every checksum first, each rank reading whole layers in turn, before anything is loaded.
  const int world = grid.world_size(), rank = grid.world_rank();
  const int n = whole.count();
  std::vector<uint64_t> sums(3 * size_t(n), 0);
  for (int g = 0; g < 3; ++g)
    for (int id = 0; id < n; ++id) {
      const Geometry geo = geometry(whole, id);
      // Per-layer tensors: layers l with l % world == rank; others: all of it on one rank.
      std::vector<int64_t> layers;
      for (int64_t l = 0; l < geo.layers; ++l)
        if ((geo.layers > 1 ? l : id) % world == rank) layers.push_back(l);
      std::vector<float> data(layers.size() * size_t(geo.rows * geo.cols));
      // One collective read per dataset: all rows of the chosen layers.
      H5Handle dataset = open_tensor(path, f, dataset_name(g, whole[id]), geo);
      H5Handle space(h5_check(H5Dget_space(dataset.get()), "space"), H5Sclose);
      H5Sselect_none(space.get());
      for (int64_t l : layers) {
        std::vector<hsize_t> start(geo.dims.size(), 0), count = geo.dims;
        if (geo.layers > 1) {
          start[0] = hsize_t(l);
          count[0] = 1;
        }
        H5Sselect_hyperslab(space.get(), H5S_SELECT_OR, start.data(), nullptr, count.data(), nullptr);
      }
      H5Handle mem = memory_space(int64_t(data.size()));
      h5::QuietErrors quiet;
      if (H5Dread(dataset.get(), H5T_NATIVE_FLOAT, mem.get(), space.get(), dxpl.get(), data.data()) < 0)
        throw InputError(path, dataset_name(g, whole[id]), "unreadable (truncated or damaged)");
      for (size_t k = 0; k < layers.size(); ++k)
        for (int64_t r = 0; r < geo.rows; ++r)
          sums[g * n + id] +=
              row_term(layers[k] * geo.rows + r, data.data() + (int64_t(k) * geo.rows + r) * geo.cols, geo.cols);
    }
  MPI_Allreduce(MPI_IN_PLACE, sums.data(), int(sums.size()), MPI_UINT64_T, MPI_SUM, grid.world_mpi());
  for (int g = 0; g < 3; ++g)
    for (int id = 0; id < n; ++id)
      if (sums[g * n + id] != stored_checksum(path, f, dataset_name(g, whole[id])))
        throw InputError(path, dataset_name(g, whole[id]), "checksum mismatch: the file is corrupted");

  // This rank's share of every tensor.
  std::array<std::vector<float>, 3> host;
  for (int g = 0; g < 3; ++g) {
    host[g].resize(size_t(mine.total));
    for (int id = 0; id < n; ++id)
      read_rows(path, f, dataset_name(g, whole[id]), geometry(whole, id), my_rows(mine, id), dxpl.get(),
                host[g].data() + mine[id].offset);
  }
  std::array<Buffer, 3> device = {model.params(), optimizer.m(), optimizer.v()};
  for (int g = 0; g < 3; ++g)
    Kokkos::deep_copy(device[g], Kokkos::View<const float*, Kokkos::HostSpace, Unmanaged>(host[g].data(), host[g].size()));

  TrainingState s;
  s.step = read_attr<int64_t>(path, f, "step", H5T_NATIVE_INT64);
  s.stage = read_attr<int64_t>(path, f, "stage", H5T_NATIVE_INT64);
  s.data = {read_attr<int64_t>(path, f, "data_epoch", H5T_NATIVE_INT64),
            read_attr<int64_t>(path, f, "data_shard", H5T_NATIVE_INT64),
            read_attr<int64_t>(path, f, "data_window", H5T_NATIVE_INT64)};
  s.tp = int(read_attr<int64_t>(path, f, "tp", H5T_NATIVE_INT64));
  s.dp = int(read_attr<int64_t>(path, f, "dp", H5T_NATIVE_INT64));
  s.est_seed = read_attr<uint64_t>(path, f, "est_seed", H5T_NATIVE_UINT64);
  s.strata = strata_of(path, f, s.tp);
  s.data_seed = read_attr<uint64_t>(path, f, "data_seed", H5T_NATIVE_UINT64);
  s.flops_so_far = read_attr<double>(path, f, "flops_so_far", H5T_NATIVE_DOUBLE);
  s.train_seconds = read_attr<double>(path, f, "train_seconds", H5T_NATIVE_DOUBLE);
  if (read_attr<int64_t>(path, f, "has_balancer_state", H5T_NATIVE_INT64))
    s.balancer = read_values<double>(path, f, "balancer_state", H5T_NATIVE_DOUBLE);
  s.config_yaml = read_string(path, f, "config");
  s.schedule_yaml = read_string(path, f, "schedule");
  optimizer.restore_steps_taken(int(read_attr<int64_t>(path, f, "adamw_t", H5T_NATIVE_INT64)));
  return s;
}

nlohmann::json describe_checkpoint(const std::string& path) {
  H5Handle file = open_file(path, MPI_COMM_NULL, H5F_ACC_RDONLY);
  const hid_t f = file.get();
  check_kind(path, f);
  nlohmann::json j;
  j["kind"] = "checkpoint";
  j["path"] = path;
  for (const char* name : {"format_version", "step", "stage", "tp", "dp", "adamw_t", "data_epoch", "data_shard",
                           "data_window"})
    j[name] = read_attr<int64_t>(path, f, name, H5T_NATIVE_INT64);
  const ModelShape shape = read_shape(path, f);
  j["shape"]["arch"] = arch_name(shape.arch);
  for (const ShapeField& sf : kShapeFields) j["shape"][sf.name] = shape.*sf.member;
  if (shape.arch == Arch::llama) {
    for (const ShapeReal& sf : kShapeReals) j["shape"][sf.name] = shape.*sf.member;
    j["shape"]["tie_embeddings"] = shape.tie_embeddings;
  }
  j["est_seed"] = read_attr<uint64_t>(path, f, "est_seed", H5T_NATIVE_UINT64);
  j["est_strata"] = strata_of(path, f, j["tp"].get<int>());
  j["flops_so_far"] = read_attr<double>(path, f, "flops_so_far", H5T_NATIVE_DOUBLE);
  j["orientation"] = read_string(path, f, "orientation");
  const ParameterLayout whole(shape);
  const int n = whole.count();
  nlohmann::json datasets = nlohmann::json::array();
  for (int g = 0; g < 3; ++g)
    for (int id = 0; id < n; ++id) {
      H5Handle d = h5::open_dataset(f, dataset_name(g, whole[id]), path);
      H5Handle space(h5_check(H5Dget_space(d.get()), "space"), H5Sclose);
      std::vector<hsize_t> dims(size_t(H5Sget_simple_extent_ndims(space.get())));
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      datasets.push_back({{"name", dataset_name(g, whole[id])}, {"shape", dims}});
    }
  j["datasets"] = datasets;
  return j;
}

std::vector<std::string> verify_checkpoint(const std::string& path) {
  H5Handle file = open_file(path, MPI_COMM_NULL, H5F_ACC_RDONLY);
  const hid_t f = file.get();
  check_kind(path, f);
  const ParameterLayout whole(read_shape(path, f));
  const int n = whole.count();
  std::vector<std::string> bad;
  for (int g = 0; g < 3; ++g)
    for (int id = 0; id < n; ++id) {
      const std::string name = dataset_name(g, whole[id]);
      H5Handle d = h5::open_dataset(f, name, path);
      const auto geo = read_values<int64_t>(path, d.get(), "layers_rows_cols", H5T_NATIVE_INT64);
      H5Handle space(h5_check(H5Dget_space(d.get()), name), H5Sclose);
      const int64_t n = H5Sget_simple_extent_npoints(space.get());
      if (!describes(geo, n)) {
        bad.push_back(name);
        continue;
      }
      std::vector<float> data(static_cast<size_t>(n));
      herr_t rc;
      {
        h5::QuietErrors quiet;
        rc = H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
      }
      uint64_t sum = 0;
      for (int64_t r = 0; r < geo[0] * geo[1]; ++r) sum += row_term(r, data.data() + r * geo[2], geo[2]);
      if (rc < 0 || sum != read_attr<uint64_t>(path, d.get(), "checksum", H5T_NATIVE_UINT64)) bad.push_back(name);
    }
  return bad;
}

}  // namespace est
