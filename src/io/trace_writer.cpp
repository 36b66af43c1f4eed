// trace.h5, format_version 2: one row per optimizer step; n rows, L = n_layer, R = ranks. Every dataset is chunked
// (64 rows) with an unlimited first dimension and carries `units` and `description` attributes; `/@` rows are
// the root's attributes, written once when the file is created (SWMR allows no new attributes later).
//
// | dataset             | type    | shape  | meaning                                                          |
// |---------------------|---------|--------|------------------------------------------------------------------|
// | step                | int64   | [n]    | optimizer step the row reports, 1-based, strictly increasing     |
// | stage               | int32   | [n]    | EST stage, 1-based                                               |
// | p_heads             | float64 | [n]    | the stage's fraction of attention heads kept                     |
// | p_mlp               | float64 | [n]    | the stage's fraction of MLP neurons kept                         |
// | p_layers            | float64 | [n]    | the stage's fraction (or probability) of layers kept             |
// | active_layers       | uint8   | [n, L] | 1 if the layer ran                                               |
// | active_heads        | int32   | [n, L] | attention heads that ran, whole model (0 for a skipped layer)    |
// | active_neurons      | int32   | [n, L] | MLP neurons that ran, whole model                                |
// | flops               | float64 | [n]    | FLOPs executed this step                                         |
// | flops_cumulative    | float64 | [n]    | FLOPs executed so far                                            |
// | flops_full          | float64 | [n]    | FLOPs the full model would have executed this step               |
// | loss                | float32 | [n]    | training loss (nats/token)                                       |
// | val_loss            | float32 | [n]    | validation loss; NaN where the step had no validation            |
// | lr                  | float64 | [n]    | learning rate                                                    |
// | grad_norm           | float64 | [n]    | whole-model gradient norm before clipping                        |
// | tokens              | int64   | [n]    | training tokens so far                                           |
// | wall_seconds        | float64 | [n]    | seconds since this invocation started                            |
// | compute_seconds     | float64 | [n, R] | per rank: seconds computing this step                            |
// | comm_seconds        | float64 | [n, R] | per rank: seconds blocked in collectives this step, the gradient |
// |                     |         |        | sum's exposed part (dp_exposed_seconds) included                 |
// | wait_seconds        | float64 | [n, R] | per rank: seconds waiting for other ranks this step              |
// | dp_reduce_seconds   | float64 | [n, R] | per rank: the data-parallel gradient sum's own seconds, hidden   |
// |                     |         |        | behind the backward pass or not (0 with one replica)             |
// | dp_exposed_seconds  | float64 | [n, R] | per rank: seconds of the gradient sum the backward pass did not  |
// |                     |         |        | hide, waited for before the optimizer step                      |
// | dp_bytes            | float64 | [n]    | rank 0's data-parallel collective payload this step              |
// | tp_bytes            | float64 | [n]    | rank 0's tensor-parallel collective payload this step            |
// | /@est_kind          | string  | scalar | "trace"                                                          |
// | /@format_version    | int32   | scalar | 2 (1: before dp_reduce_seconds and dp_exposed_seconds)          |
// | /@config            | string  | scalar | the effective configuration (YAML)                               |
// | /@schedule          | string  | scalar | the EST schedule's text ("" without one)                         |
// | /@git_revision      | string  | scalar | of the source the binary was built from                          |
// | /@host              | string  | scalar | host of rank 0                                                   |
// | /@flops_convention  | string  | scalar | how FLOPs are counted                                            |
// | /@library_versions  | string  | scalar | HDF5, Kokkos, GEMM backend, MPI                                  |
// | /@ranks, /@tp, /@dp | int32   | scalar | process grid: ranks = tp x dp                                    |
// | /@n_layer           | int32   | scalar | L                                                                |
// | /@n_head, /@n_embd  | int32   | scalar | attention (query) heads per layer, model width                   |
// | /@arch              | string  | scalar | gpt2 or llama                                                    |
// | /@n_kv_head         | int32   | scalar | key/value heads per layer (n_head for GPT-2)                     |
// | /@mlp_hidden        | int32   | scalar | MLP neurons per layer                                            |
// | /@created           | string  | scalar | ISO 8601 UTC time the file was created (a resume keeps it)       |
//
// Strings are variable-length UTF-8. A resumed run keeps the root attributes of the run that created the file.
#include "io/trace_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <type_traits>

#include "input_error.hpp"
#include "io/hdf5_util.hpp"
#include "io/timestamp.hpp"

namespace est {
namespace {

constexpr int kFormatVersion = 2;
constexpr hsize_t kChunkRows = 64;

using Bytes = std::vector<unsigned char>;

enum class Width { one, layers, ranks };

template <class T>
hid_t native_type() {
  if constexpr (std::is_same_v<T, int64_t>) {
    return H5T_NATIVE_INT64;
  } else if constexpr (std::is_same_v<T, int32_t>) {
    return H5T_NATIVE_INT32;
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    return H5T_NATIVE_UINT8;
  } else if constexpr (std::is_same_v<T, float>) {
    return H5T_NATIVE_FLOAT;
  } else {
    static_assert(std::is_same_v<T, double>, "a TraceRow field of a type the trace has no dataset type for");
    return H5T_NATIVE_DOUBLE;
  }
}

template <class T>
void put(Bytes& out, const T* values, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(values);
  out.insert(out.end(), p, p + n * sizeof(T));
}

// One dataset. Its type is the TraceRow field's own, in memory and in the file, so nothing is converted.
struct Column {
  const char* name;
  hid_t type;
  Width width;
  const char* units;
  const char* description;
  std::function<size_t(const TraceRow&)> count;  // values the row holds for it
  std::function<void(const TraceRow&, Bytes&)> pack;
};

template <class T>
Column scalar(const char* name, T TraceRow::*field, const char* units, const char* description) {
  return {name,
          native_type<T>(),
          Width::one,
          units,
          description,
          [](const TraceRow&) -> size_t { return 1; },
          [field](const TraceRow& r, Bytes& out) { put(out, &(r.*field), 1); }};
}

template <class T>
Column per(Width width, const char* name, std::vector<T> TraceRow::*field, const char* units, const char* description) {
  return {name,
          native_type<T>(),
          width,
          units,
          description,
          [field](const TraceRow& r) { return (r.*field).size(); },
          [field](const TraceRow& r, Bytes& out) { put(out, (r.*field).data(), (r.*field).size()); }};
}

// In the schema's order; `step` must stay first (see Impl::flush).
const std::vector<Column>& columns() {
  using R = TraceRow;
  static const std::vector<Column> c = {
      scalar("step", &R::step, "step", "optimizer step the row reports, 1-based"),
      scalar("stage", &R::stage, "stage", "EST stage, 1-based"),
      scalar("p_heads", &R::p_heads, "fraction", "the stage's fraction of attention heads kept"),
      scalar("p_mlp", &R::p_mlp, "fraction", "the stage's fraction of MLP neurons kept"),
      scalar("p_layers", &R::p_layers, "fraction", "the stage's fraction (or probability) of layers kept"),
      per(Width::layers, "active_layers", &R::active_layers, "bool", "per layer: 1 if the layer ran"),
      per(Width::layers, "active_heads", &R::active_heads, "heads", "per layer: attention heads that ran"),
      per(Width::layers, "active_neurons", &R::active_neurons, "neurons", "per layer: MLP neurons that ran"),
      scalar("flops", &R::flops, "FLOP", "FLOPs executed this step"),
      scalar("flops_cumulative", &R::flops_cumulative, "FLOP", "FLOPs executed so far"),
      scalar("flops_full", &R::flops_full, "FLOP", "FLOPs the full model would have executed this step"),
      scalar("loss", &R::loss, "nats/token", "training loss"),
      scalar("val_loss", &R::val_loss, "nats/token", "validation loss; NaN where the step had no validation"),
      scalar("lr", &R::lr, "1", "learning rate"),
      scalar("grad_norm", &R::grad_norm, "1", "whole-model gradient norm before clipping"),
      scalar("tokens", &R::tokens, "tokens", "training tokens so far"),
      scalar("wall_seconds", &R::wall_seconds, "s", "seconds since this invocation started"),
      per(Width::ranks, "compute_seconds", &R::compute_seconds, "s", "per rank: seconds computing this step"),
      per(Width::ranks, "comm_seconds", &R::comm_seconds, "s",
          "per rank: seconds blocked in collectives this step (the gradient sum's exposed part included)"),
      per(Width::ranks, "wait_seconds", &R::wait_seconds, "s", "per rank: seconds waiting for other ranks"),
      per(Width::ranks, "dp_reduce_seconds", &R::dp_reduce_seconds, "s",
          "per rank: the data-parallel gradient sum's own seconds, hidden or not"),
      per(Width::ranks, "dp_exposed_seconds", &R::dp_exposed_seconds, "s",
          "per rank: seconds of the gradient sum the backward pass did not hide"),
      scalar("dp_bytes", &R::dp_bytes, "bytes", "rank 0's data-parallel collective payload this step"),
      scalar("tp_bytes", &R::tp_bytes, "bytes", "rank 0's tensor-parallel collective payload this step"),
  };
  return c;
}

hsize_t width_of(Width w, const TraceMetadata& meta) {
  switch (w) {
    case Width::layers:
      return static_cast<hsize_t>(meta.n_layer);
    case Width::ranks:
      return static_cast<hsize_t>(meta.ranks);
    case Width::one:
      break;
  }
  return 1;
}

int rank_of(Width w) { return w == Width::one ? 1 : 2; }

std::string dataset_where(const std::string& path, const Column& c) { return path + ": dataset " + c.name; }

// SWMR needs the latest file format.
H5Handle latest_format_access(const std::string& path) {
  H5Handle fapl(h5_check(H5Pcreate(H5P_FILE_ACCESS), path + ": H5Pcreate file access"), H5Pclose);
  h5_check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), path + ": H5Pset_libver_bounds");
  return fapl;
}

void write_root_attributes(hid_t file, const TraceMetadata& meta, const std::string& path) {
  const std::pair<const char*, std::string> strings[] = {
      {"est_kind", "trace"},
      {"config", meta.config_yaml},
      {"schedule", meta.schedule_yaml},
      {"git_revision", meta.git_revision},
      {"host", meta.host},
      {"flops_convention", meta.flops_convention},
      {"library_versions", meta.library_versions},
      {"arch", meta.arch},
      {"created", iso_utc_now()},
  };
  for (const auto& [name, value] : strings) h5::write_attribute(file, name, value, path);
  const std::pair<const char*, int> ints[] = {
      {"format_version", kFormatVersion}, {"ranks", meta.ranks}, {"tp", meta.tp}, {"dp", meta.dp},
      {"n_layer", meta.n_layer}, {"n_head", meta.n_head}, {"n_embd", meta.n_embd},
      {"n_kv_head", meta.n_kv_head}, {"mlp_hidden", meta.mlp_hidden},
  };
  for (const auto& [name, value] : ints) h5::write_attribute(file, name, value, H5T_NATIVE_INT32, path);
}

H5Handle create_dataset(hid_t file, const Column& c, hsize_t width, const std::string& path) {
  const std::string where = dataset_where(path, c);
  const int rank = rank_of(c.width);
  const hsize_t dims[2] = {0, width}, max_dims[2] = {H5S_UNLIMITED, width}, chunk[2] = {kChunkRows, width};
  H5Handle space(h5_check(H5Screate_simple(rank, dims, max_dims), where + ": H5Screate_simple"), H5Sclose);
  H5Handle dcpl(h5_check(H5Pcreate(H5P_DATASET_CREATE), where + ": H5Pcreate"), H5Pclose);
  h5_check(H5Pset_chunk(dcpl.get(), rank, chunk), where + ": H5Pset_chunk");
  H5Handle ds(h5_check(H5Dcreate2(file, c.name, c.type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                       where + ": H5Dcreate2"),
              H5Dclose);
  h5::write_attribute(ds.get(), "units", c.units, where);
  h5::write_attribute(ds.get(), "description", c.description, where);
  return ds;
}

// A writer that died (a killed job) leaves the superblock marked as open for writing, and its end-of-allocation
// short of what the SWMR flushes wrote: HDF5 refuses the file. The library has no public way to repair it; this
// private file-access property and H5Fincrement_filesize are what `h5clear -s --increment=0` uses.
H5Handle open_after_crash(const std::string& path, hid_t fapl) {
  hbool_t clear = true;
  h5_check(H5Pset(fapl, "clear_status_flags", &clear), path + ": H5Pset clear_status_flags");
  H5Handle file = h5::try_open_file(path, H5F_ACC_RDWR, fapl);
  if (file.valid()) h5_check(H5Fincrement_filesize(file.get(), 0), path + ": H5Fincrement_filesize");
  return file;
}

H5Handle open_for_append(const std::string& path) {
  if (!std::filesystem::exists(path)) throw InputError(path, "file", "no trace to resume");
  if (!h5::is_hdf5(path)) throw InputError(path, "file", "not an HDF5 file");
  H5Handle fapl = latest_format_access(path);
  H5Handle file = h5::try_open_file(path, H5F_ACC_RDWR, fapl.get());
  if (!file.valid()) file = open_after_crash(path, fapl.get());
  if (!file.valid()) throw InputError(path, "file", "cannot open the trace for appending");
  return file;
}

// Whether the trace at `path` opens, and every dataset's header and chunk index load: a write torn there fails a
// checksum. (The chunks themselves carry none; a torn one still holds the rows it had.)
bool intact(const std::string& path) {
  h5::QuietErrors quiet;
  try {
    H5Handle file = open_for_append(path);
    for (const Column& c : columns()) {
      H5Handle ds = h5::open_dataset(file.get(), c.name, path);
      hsize_t chunks = 0;
      h5_check(H5Dget_num_chunks(ds.get(), H5S_ALL, &chunks), dataset_where(path, c) + ": H5Dget_num_chunks");
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void check_resumable(hid_t file, const TraceMetadata& meta, const std::string& path) {
  const auto kind = h5::read_string_attribute(file, "est_kind", path);
  if (kind != "trace")
    throw InputError(path, "est_kind", kind ? "'" + *kind + "', not a trace" : "missing: not an est trace");
  const std::pair<const char*, int> shape[] = {{"n_layer", meta.n_layer}, {"ranks", meta.ranks}};
  for (const auto& [name, expected] : shape) {
    const auto got = h5::read_int_attribute(file, name, path);
    if (got != expected)
      throw InputError(path, name,
                       (got ? std::to_string(*got) : std::string("missing")) + " in the trace, but " +
                           std::to_string(expected) + " in this run");
  }
}

// Rows up to and including resume_step, and no more than any dataset holds (a job killed mid-flush may have
// extended only some).
hsize_t rows_through(const std::vector<H5Handle>& datasets, int64_t resume_step, const std::string& path) {
  const Column& step = columns()[0];
  std::vector<int64_t> steps(h5::column_rows(datasets[0].get(), path, step.name));
  if (!steps.empty())
    h5_check(H5Dread(datasets[0].get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data()),
             dataset_where(path, step) + ": H5Dread");
  auto keep = static_cast<hsize_t>(
      std::find_if(steps.begin(), steps.end(), [&](int64_t s) { return s > resume_step; }) - steps.begin());
  for (size_t i = 0; i < datasets.size(); ++i)
    keep = std::min(keep, h5::rows(datasets[i].get(), dataset_where(path, columns()[i])));
  return keep;
}

void set_rows(hid_t ds, const Column& c, hsize_t rows, const TraceMetadata& meta, const std::string& where) {
  const hsize_t extent[2] = {rows, width_of(c.width, meta)};
  h5_check(H5Dset_extent(ds, extent), where + ": H5Dset_extent");
}

}  // namespace

struct TraceWriter::Impl {
  std::string path;
  TraceMetadata meta;
  size_t flush_every;
  H5Handle file;                   // declared before the datasets, so closed after them
  std::vector<H5Handle> datasets;  // in columns() order
  hsize_t rows = 0;                // in the file
  hsize_t copied_rows = 0;         // in the copy
  std::vector<TraceRow> pending;

  Impl(const std::string& path_, const TraceMetadata& meta_, int64_t resume_step, int flush_every_)
      : path(path_), meta(meta_), flush_every(static_cast<size_t>(flush_every_)) {
    if (meta.n_layer < 1 || meta.ranks < 1 || flush_every_ < 1)
      throw std::invalid_argument(path + ": trace needs n_layer, ranks and flush_every of at least 1");
    if (resume_step >= 0) {
      reopen(resume_step);
      h5_check(H5Fstart_swmr_write(file.get()), path + ": H5Fstart_swmr_write");
      copy();
    } else {
      create();
    }
  }

  // Built under a temporary name and renamed once in SWMR mode: a reader polling for the trace never finds it
  // locked by the writer's set-up.
  void create() {
    std::filesystem::remove(copy_path());  // an earlier trace's, not this one's
    const std::string tmp = path + ".tmp";
    H5Handle fapl = latest_format_access(path);
    file = H5Handle(h5_check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), tmp + ": H5Fcreate"),
                    H5Fclose);
    write_root_attributes(file.get(), meta, path);
    for (const Column& c : columns()) datasets.push_back(create_dataset(file.get(), c, width_of(c.width, meta), path));
    h5_check(H5Fstart_swmr_write(file.get()), path + ": H5Fstart_swmr_write");
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw std::runtime_error(path + ": cannot rename " + tmp + ": " + std::strerror(errno));
  }

  std::string copy_path() const { return path + ".bak"; }

  // HDF5 rewrites the superblock and each dataset's header in place when it flushes: a job killed in the middle of
  // such a write loses the file or the dataset, rows the last checkpoint counts on included. So the public flush()
  // (the trainer's, before each checkpoint) and a resume leave a copy of the whole file for reopen() to fall back
  // on. Nothing writes the trace while it is copied, so the trace is intact whenever a copy was cut short.
  void copy() {
    h5_check(H5Fflush(file.get(), H5F_SCOPE_LOCAL), path + ": H5Fflush");
    std::filesystem::copy_file(path, copy_path(), std::filesystem::copy_options::overwrite_existing);
    copied_rows = rows;
  }

  void reopen(int64_t resume_step) {
    // The copy holds every row through the last checkpoint the killed writer reached.
    if (!intact(path) && std::filesystem::exists(copy_path()))
      std::filesystem::copy_file(copy_path(), path, std::filesystem::copy_options::overwrite_existing);
    file = open_for_append(path);
    check_resumable(file.get(), meta, path);
    for (const Column& c : columns()) datasets.push_back(h5::open_dataset(file.get(), c.name, path));
    rows = rows_through(datasets, resume_step, path);
    for (size_t i = 0; i < datasets.size(); ++i)
      set_rows(datasets[i].get(), columns()[i], rows, meta, dataset_where(path, columns()[i]));
  }

  void check_widths(const TraceRow& row) const {
    for (const Column& c : columns()) {
      const size_t got = c.count(row), expected = width_of(c.width, meta);
      if (got != expected)
        throw std::invalid_argument(dataset_where(path, c) + ": step " + std::to_string(row.step) + " has " +
                                    std::to_string(got) + " values, expected " + std::to_string(expected));
    }
  }

  // Extends dataset i by the batch's rows, writes them and publishes them to SWMR readers.
  void write_rows(size_t i, const std::vector<TraceRow>& batch) {
    const Column& c = columns()[i];
    const std::string where = dataset_where(path, c);
    const hid_t ds = datasets[i].get();
    const hsize_t n = batch.size(), width = width_of(c.width, meta);
    Bytes bytes;
    bytes.reserve(n * width * H5Tget_size(c.type));
    for (const TraceRow& r : batch) c.pack(r, bytes);
    set_rows(ds, c, rows + n, meta, where);
    H5Handle file_space(h5_check(H5Dget_space(ds), where + ": H5Dget_space"), H5Sclose);
    const hsize_t start[2] = {rows, 0}, count[2] = {n, width};
    h5_check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr),
             where + ": H5Sselect_hyperslab");
    H5Handle mem_space(h5_check(H5Screate_simple(rank_of(c.width), count, nullptr), where + ": H5Screate_simple"),
                       H5Sclose);
    h5_check(H5Dwrite(ds, c.type, mem_space.get(), file_space.get(), H5P_DEFAULT, bytes.data()), where + ": H5Dwrite");
    h5_check(H5Dflush(ds), where + ": H5Dflush");
  }

  void flush() {
    if (pending.empty()) return;
    // Rows that failed to reach the file once are dropped, not tried again at every later flush (destruction too).
    std::vector<TraceRow> batch;
    batch.swap(pending);
    // `step` (column 0) goes last: a reader that counts rows by it finds them in every other dataset already.
    for (size_t i = columns().size(); i-- > 1;) write_rows(i, batch);
    write_rows(0, batch);
    rows += batch.size();
  }
};

TraceWriter::TraceWriter(const std::string& path, const TraceMetadata& meta, int64_t resume_step, int flush_every)
    : impl_(new Impl(path, meta, resume_step, flush_every)) {}

TraceWriter::~TraceWriter() {
  bool whole = true;
  try {
    impl_->flush();
  } catch (const std::exception& e) {
    whole = false;
    std::fprintf(stderr, "est: warning: trace rows lost: %s\n", e.what());
  }
  impl_->datasets.clear();
  whole = H5Fclose(impl_->file.release()) >= 0 && whole;
  const std::string copy = impl_->copy_path();
  delete impl_;
  // Closed cleanly, the file needs no copy to fall back on; after a failure the copy stays for the resume.
  std::error_code ignored;
  if (whole) std::filesystem::remove(copy, ignored);
}

void TraceWriter::append(const TraceRow& row) {
  impl_->check_widths(row);
  impl_->pending.push_back(row);
  if (impl_->pending.size() >= impl_->flush_every) impl_->flush();
}

void TraceWriter::flush() {
  impl_->flush();
  if (impl_->rows != impl_->copied_rows) impl_->copy();
}

}  // namespace est
