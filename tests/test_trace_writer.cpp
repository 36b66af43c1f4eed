#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "input_error.hpp"
#include "test_util.hpp"
#include "io/hdf5_handle.hpp"
#include "io/inspect.hpp"
#include "io/trace_writer.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

constexpr int kLayers = 3;
constexpr int kRanks = 2;

using test::TempDir;

TraceMetadata metadata(int n_layer = kLayers, int ranks = kRanks) {
  TraceMetadata m;
  m.config_yaml = "# est test\nmodel:\n  n_layer: 3\n";
  m.schedule_yaml = "stages: []\n";
  m.git_revision = "abc1234";
  m.host = "testhost";
  m.flops_convention = "6N per token";
  m.library_versions = "HDF5 1.10.8";
  m.ranks = ranks;
  m.tp = 1;
  m.dp = ranks;
  m.n_layer = n_layer;
  return m;
}

// Every field a distinct function of the step; `run` tells a resumed run's rows from the first run's.
TraceRow row(int64_t step, int run = 0) {
  TraceRow r;
  r.step = step;
  r.stage = static_cast<int32_t>(1 + (step - 1) / 10);
  r.p_heads = 0.5 + 0.01 * step;
  r.p_mlp = 0.25 + 0.01 * step;
  r.p_layers = 0.75 + 0.001 * step;
  for (int l = 0; l < kLayers; ++l) {
    r.active_layers.push_back(static_cast<uint8_t>((step + l) % 2));
    r.active_heads.push_back(static_cast<int32_t>(step + l));
    r.active_neurons.push_back(static_cast<int32_t>(100 * step + l));
  }
  r.flops = 1e9 * step;
  r.flops_cumulative = 1e9 * step * (step + 1) / 2;
  r.flops_full = 2e9;
  r.loss = static_cast<float>(10.0 - 0.1 * step + run);
  r.val_loss = step % 5 == 0 ? static_cast<float>(5.0 - 0.01 * step) : std::numeric_limits<float>::quiet_NaN();
  r.lr = 1e-3 * step;
  r.grad_norm = 0.5 * step;
  r.tokens = 1024 * step;
  r.wall_seconds = 0.1 * step + run;
  for (int k = 0; k < kRanks; ++k) {
    r.compute_seconds.push_back(step + 0.1 * k);
    r.comm_seconds.push_back(step + 0.2 * k);
    r.wait_seconds.push_back(step + 0.3 * k);
    r.dp_reduce_seconds.push_back(step + 0.4 * k);
    r.dp_exposed_seconds.push_back(step + 0.5 * k);
  }
  r.dp_bytes = 1000.0 * step;
  r.tp_bytes = 10.0 * step;
  return r;
}

void write_rows(const std::string& path, int64_t first, int64_t last, int64_t resume_step = -1, int run = 0) {
  TraceWriter w(path, metadata(), resume_step, 10);
  for (int64_t s = first; s <= last; ++s) w.append(row(s, run));
}

H5Handle open_read_only(const std::string& path, unsigned flags = H5F_ACC_RDONLY) {
  return H5Handle(h5_check(H5Fopen(path.c_str(), flags, H5P_DEFAULT), "open " + path), H5Fclose);
}

std::vector<hsize_t> dims_of(hid_t dataset) {
  H5Handle space(h5_check(H5Dget_space(dataset), "H5Dget_space"), H5Sclose);
  std::vector<hsize_t> dims(H5Sget_simple_extent_ndims(space.get()));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

struct Dataset {
  std::vector<hsize_t> dims;
  std::vector<double> values;  // row-major, converted by HDF5
};

Dataset read(hid_t file, const char* name) {
  H5Handle d(h5_check(H5Dopen2(file, name, H5P_DEFAULT), name), H5Dclose);
  Dataset out{dims_of(d.get()), {}};
  hsize_t n = 1;
  for (hsize_t x : out.dims) n *= x;
  out.values.resize(n);
  if (n) h5_check(H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()), name);
  return out;
}

H5T_class_t stored_class(hid_t file, const char* name, size_t& size) {
  H5Handle d(h5_check(H5Dopen2(file, name, H5P_DEFAULT), name), H5Dclose);
  H5Handle t(h5_check(H5Dget_type(d.get()), name), H5Tclose);
  size = H5Tget_size(t.get());
  return H5Tget_class(t.get());
}

std::string string_attribute(hid_t obj, const char* name) {
  H5Handle a(h5_check(H5Aopen(obj, name, H5P_DEFAULT), name), H5Aclose);
  H5Handle t(h5_check(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  char* s = nullptr;
  h5_check(H5Aread(a.get(), t.get(), &s), name);
  std::string out = s;
  H5free_memory(s);
  return out;
}

int64_t int_attribute(hid_t obj, const char* name) {
  H5Handle a(h5_check(H5Aopen(obj, name, H5P_DEFAULT), name), H5Aclose);
  int64_t v = 0;
  h5_check(H5Aread(a.get(), H5T_NATIVE_INT64, &v), name);
  return v;
}

// The value TraceRow holds for a dataset's column `col`, as the dataset stores it.
double expected(const TraceRow& r, const std::string& name, size_t col) {
  if (name == "step") return double(r.step);
  if (name == "stage") return r.stage;
  if (name == "p_heads") return r.p_heads;
  if (name == "p_mlp") return r.p_mlp;
  if (name == "p_layers") return r.p_layers;
  if (name == "active_layers") return r.active_layers[col];
  if (name == "active_heads") return r.active_heads[col];
  if (name == "active_neurons") return r.active_neurons[col];
  if (name == "flops") return r.flops;
  if (name == "flops_cumulative") return r.flops_cumulative;
  if (name == "flops_full") return r.flops_full;
  if (name == "loss") return r.loss;
  if (name == "val_loss") return r.val_loss;
  if (name == "lr") return r.lr;
  if (name == "grad_norm") return r.grad_norm;
  if (name == "tokens") return double(r.tokens);
  if (name == "wall_seconds") return r.wall_seconds;
  if (name == "compute_seconds") return r.compute_seconds[col];
  if (name == "comm_seconds") return r.comm_seconds[col];
  if (name == "wait_seconds") return r.wait_seconds[col];
  if (name == "dp_reduce_seconds") return r.dp_reduce_seconds[col];
  if (name == "dp_exposed_seconds") return r.dp_exposed_seconds[col];
  if (name == "dp_bytes") return r.dp_bytes;
  if (name == "tp_bytes") return r.tp_bytes;
  ADD_FAILURE() << "unknown dataset " << name;
  return 0;
}

struct Schema {
  const char* name;
  H5T_class_t type_class;
  size_t size;
  hsize_t width;  // 0: one-dimensional
};

const Schema kSchema[] = {
    {"step", H5T_INTEGER, 8, 0},
    {"stage", H5T_INTEGER, 4, 0},
    {"p_heads", H5T_FLOAT, 8, 0},
    {"p_mlp", H5T_FLOAT, 8, 0},
    {"p_layers", H5T_FLOAT, 8, 0},
    {"active_layers", H5T_INTEGER, 1, kLayers},
    {"active_heads", H5T_INTEGER, 4, kLayers},
    {"active_neurons", H5T_INTEGER, 4, kLayers},
    {"flops", H5T_FLOAT, 8, 0},
    {"flops_cumulative", H5T_FLOAT, 8, 0},
    {"flops_full", H5T_FLOAT, 8, 0},
    {"loss", H5T_FLOAT, 4, 0},
    {"val_loss", H5T_FLOAT, 4, 0},
    {"lr", H5T_FLOAT, 8, 0},
    {"grad_norm", H5T_FLOAT, 8, 0},
    {"tokens", H5T_INTEGER, 8, 0},
    {"wall_seconds", H5T_FLOAT, 8, 0},
    {"compute_seconds", H5T_FLOAT, 8, kRanks},
    {"comm_seconds", H5T_FLOAT, 8, kRanks},
    {"wait_seconds", H5T_FLOAT, 8, kRanks},
    {"dp_reduce_seconds", H5T_FLOAT, 8, kRanks},
    {"dp_exposed_seconds", H5T_FLOAT, 8, kRanks},
    {"dp_bytes", H5T_FLOAT, 8, 0},
    {"tp_bytes", H5T_FLOAT, 8, 0},
};

// Row i of every dataset holds the TraceRow of steps[i] (from run runs[i]).
void expect_rows(const std::string& path, const std::vector<int64_t>& steps, const std::vector<int>& runs,
                 unsigned flags = H5F_ACC_RDONLY) {
  H5Handle f = open_read_only(path, flags);
  for (const Schema& s : kSchema) {
    SCOPED_TRACE(s.name);
    size_t size = 0;
    EXPECT_EQ(stored_class(f.get(), s.name, size), s.type_class);
    EXPECT_EQ(size, s.size);
    const Dataset d = read(f.get(), s.name);
    const std::vector<hsize_t> want_dims =
        s.width ? std::vector<hsize_t>{steps.size(), s.width} : std::vector<hsize_t>{steps.size()};
    ASSERT_EQ(d.dims, want_dims);
    const size_t width = s.width ? s.width : 1;
    for (size_t i = 0; i < steps.size(); ++i)
      for (size_t c = 0; c < width; ++c) {
        const double want = expected(row(steps[i], runs[i]), s.name, c), got = d.values[i * width + c];
        if (std::isnan(want))
          EXPECT_TRUE(std::isnan(got)) << "row " << i;
        else
          EXPECT_EQ(got, want) << "row " << i << " column " << c;
      }
  }
}

std::vector<int64_t> range(int64_t first, int64_t last) {
  std::vector<int64_t> v;
  for (int64_t s = first; s <= last; ++s) v.push_back(s);
  return v;
}

TEST(TraceWriter, WritesEveryDatasetWithItsShapeTypeAndValues) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 25);
  expect_rows(path, range(1, 25), std::vector<int>(25, 0));
}

TEST(TraceWriter, WritesRootAndDatasetAttributes) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 3);
  H5Handle f = open_read_only(path);
  const TraceMetadata m = metadata();
  EXPECT_EQ(string_attribute(f.get(), "est_kind"), "trace");
  EXPECT_EQ(int_attribute(f.get(), "format_version"), 2);
  EXPECT_EQ(string_attribute(f.get(), "config"), m.config_yaml);
  EXPECT_EQ(string_attribute(f.get(), "schedule"), m.schedule_yaml);
  EXPECT_EQ(string_attribute(f.get(), "git_revision"), m.git_revision);
  EXPECT_EQ(string_attribute(f.get(), "host"), m.host);
  EXPECT_EQ(string_attribute(f.get(), "flops_convention"), m.flops_convention);
  EXPECT_EQ(string_attribute(f.get(), "library_versions"), m.library_versions);
  EXPECT_EQ(int_attribute(f.get(), "ranks"), kRanks);
  EXPECT_EQ(int_attribute(f.get(), "tp"), 1);
  EXPECT_EQ(int_attribute(f.get(), "dp"), kRanks);
  EXPECT_EQ(int_attribute(f.get(), "n_layer"), kLayers);
  EXPECT_TRUE(std::regex_match(string_attribute(f.get(), "created"), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  for (const Schema& s : kSchema) {
    H5Handle d(h5_check(H5Dopen2(f.get(), s.name, H5P_DEFAULT), s.name), H5Dclose);
    EXPECT_FALSE(string_attribute(d.get(), "units").empty()) << s.name;
    EXPECT_FALSE(string_attribute(d.get(), "description").empty()) << s.name;
  }
}

TEST(TraceWriter, FlushesEveryFlushEveryRows) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  TraceWriter w(path, metadata(), -1, 10);
  H5Handle f = open_read_only(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ);
  H5Handle step(h5_check(H5Dopen2(f.get(), "step", H5P_DEFAULT), "step"), H5Dclose);
  for (int64_t s = 1; s <= 25; ++s) {
    w.append(row(s));
    h5_check(H5Drefresh(step.get()), "H5Drefresh");
    EXPECT_EQ(dims_of(step.get())[0], hsize_t(s / 10 * 10)) << "after step " << s;
  }
}

TEST(TraceWriter, SwmrReaderSeesRowsAfterEachFlushWhileTheWriterIsOpen) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  TraceWriter w(path, metadata(), -1, 100);
  H5Handle f = open_read_only(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ);
  H5Handle step(h5_check(H5Dopen2(f.get(), "step", H5P_DEFAULT), "step"), H5Dclose);
  H5Handle loss(h5_check(H5Dopen2(f.get(), "loss", H5P_DEFAULT), "loss"), H5Dclose);
  EXPECT_EQ(dims_of(step.get())[0], 0u);
  for (int64_t batch = 0; batch < 3; ++batch) {
    for (int64_t s = batch * 4 + 1; s <= batch * 4 + 4; ++s) w.append(row(s));
    h5_check(H5Drefresh(step.get()), "H5Drefresh");
    EXPECT_EQ(dims_of(step.get())[0], hsize_t(batch * 4)) << "appended, not flushed";
    w.flush();
    h5_check(H5Drefresh(step.get()), "H5Drefresh");
    h5_check(H5Drefresh(loss.get()), "H5Drefresh");
    ASSERT_EQ(dims_of(step.get())[0], hsize_t(batch * 4 + 4));
    std::vector<float> losses(batch * 4 + 4);
    h5_check(H5Dread(loss.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, losses.data()), "loss");
    EXPECT_EQ(losses.back(), row(batch * 4 + 4).loss);
  }
}

// In one process HDF5 shares an open file's state between handles; a copy of the file taken while the writer
// is open holds only what flush() put on disk, as another process would see it.
TEST(TraceWriter, FlushPutsRowsOnDiskWhileTheWriterIsOpen) {
  TempDir dir;
  const std::string path = dir.file("trace.h5"), copy = dir.file("copy.h5");
  TraceWriter w(path, metadata(), -1, 100);
  for (int64_t s = 1; s <= 7; ++s) w.append(row(s));
  w.flush();
  fs::copy_file(path, copy);
  expect_rows(copy, range(1, 7), std::vector<int>(7, 0), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ);
}

TEST(TraceWriter, ResumeDropsRowsAfterTheResumeStepAndAppends) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 25);
  write_rows(path, 13, 30, /*resume_step=*/12, /*run=*/1);
  std::vector<int> runs(12, 0);
  runs.resize(30, 1);
  expect_rows(path, range(1, 30), runs);
}

TEST(TraceWriter, ResumeBeforeTheFirstRowKeepsNone) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 5);
  write_rows(path, 1, 2, /*resume_step=*/0, /*run=*/1);
  expect_rows(path, range(1, 2), {1, 1});
}

// A job killed while writing leaves the file marked as open for writing; a copy taken while the writer is open
// is such a file.
TEST(TraceWriter, ResumesATraceWhoseWriterDied) {
  TempDir dir;
  const std::string path = dir.file("trace.h5"), crashed = dir.file("crashed.h5");
  {
    TraceWriter w(path, metadata(), -1, 5);
    for (int64_t s = 1; s <= 12; ++s) w.append(row(s));
    fs::copy_file(path, crashed);
  }
  write_rows(crashed, 9, 14, /*resume_step=*/8, /*run=*/1);
  std::vector<int> runs(8, 0);
  runs.resize(14, 1);
  expect_rows(crashed, range(1, 14), runs);
}

// Zeroes the second half of the 48-byte superblock, as a write that a kill cut short leaves it: its checksum no
// longer matches and HDF5 refuses the file.
void tear_superblock(const std::string& path) {
  const char zeros[24] = {};
  std::FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, 24, SEEK_SET);
  std::fwrite(zeros, 1, sizeof zeros, f);
  std::fclose(f);
}

// A kill in the middle of a flush can tear what HDF5 rewrites in place (the superblock, a dataset's header) and
// lose rows the last checkpoint counts on: a resume falls back on the copy the last flush() left. (tests/faults
// tears every kind of write for real.)
TEST(TraceWriter, ResumesFromTheCopyOfTheLastFlushWhenAWriteWasTorn) {
  TempDir dir;
  const std::string path = dir.file("trace.h5"), crashed = dir.file("crashed.h5");
  {
    TraceWriter w(path, metadata(), -1, 5);
    for (int64_t s = 1; s <= 7; ++s) w.append(row(s));
    w.flush();
    for (int64_t s = 8; s <= 12; ++s) w.append(row(s));
    fs::copy_file(path, crashed);
    fs::copy_file(path + ".bak", crashed + ".bak");
  }
  EXPECT_FALSE(fs::exists(path + ".bak")) << "a clean close leaves no copy";
  tear_superblock(crashed);
  write_rows(crashed, 8, 14, /*resume_step=*/7, /*run=*/1);
  std::vector<int> runs(7, 0);
  runs.resize(14, 1);
  expect_rows(crashed, range(1, 14), runs);
  EXPECT_FALSE(fs::exists(crashed + ".bak"));
}

template <class F>
void expect_input_error(F&& f, const std::string& file, const std::string& key) {
  try {
    f();
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), file) << e.what();
    EXPECT_EQ(e.key(), key) << e.what();
  }
}

TEST(TraceWriter, ResumeRejectsWhatIsNotAMatchingTrace) {
  TempDir dir;
  const std::string trace = dir.file("trace.h5"), other = dir.file("other.h5"), text = dir.file("notes.txt");
  write_rows(trace, 1, 3);
  { H5Handle f(h5_check(H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create"), H5Fclose); }
  std::FILE* t = std::fopen(text.c_str(), "w");
  std::fputs("not HDF5\n", t);
  std::fclose(t);

  expect_input_error([&] { TraceWriter w(trace, metadata(kLayers + 1), 2); }, trace, "n_layer");
  expect_input_error([&] { TraceWriter w(trace, metadata(kLayers, kRanks + 2), 2); }, trace, "ranks");
  expect_input_error([&] { TraceWriter w(other, metadata(), 2); }, other, "est_kind");
  expect_input_error([&] { TraceWriter w(text, metadata(), 2); }, text, "file");
  expect_input_error([&] { TraceWriter w(dir.file("missing.h5"), metadata(), 2); }, dir.file("missing.h5"), "file");
  expect_rows(trace, range(1, 3), {0, 0, 0});
}

TEST(TraceWriter, AppendRejectsRowsOfTheWrongWidth) {
  TempDir dir;
  TraceWriter w(dir.file("trace.h5"), metadata(), -1, 10);
  TraceRow r = row(1);
  r.comm_seconds.pop_back();
  EXPECT_THROW(w.append(r), std::invalid_argument);
}

// est inspect's output, parsed when it is JSON.
struct Inspected {
  int status;
  std::string out;
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

Inspected inspect(const std::string& path, bool verify, bool as_json) {
  testing::internal::CaptureStdout();
  const int status = inspect_file(path, verify, as_json);
  std::fflush(stdout);
  return {status, testing::internal::GetCapturedStdout()};
}

TEST(InspectTrace, SummarisesTheTrace) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 25);
  const Inspected r = inspect(path, false, true);
  ASSERT_EQ(r.status, 0);
  const nlohmann::json j = r.json();
  EXPECT_EQ(j["kind"], "trace");
  EXPECT_EQ(j["format_version"], 2);
  EXPECT_EQ(j["rows"], 25);
  EXPECT_EQ(j["first_step"], 1);
  EXPECT_EQ(j["last_step"], 25);
  EXPECT_EQ(j["last_loss"]["step"], 25);
  EXPECT_EQ(j["last_loss"]["value"].get<double>(), row(25).loss);
  EXPECT_EQ(j["last_val_loss"]["step"], 25);
  EXPECT_EQ(j["last_val_loss"]["value"].get<double>(), row(25).val_loss);
  EXPECT_EQ(j["flops_total"].get<double>(), row(25).flops_cumulative);
  EXPECT_EQ(j["tokens"], row(25).tokens);
  EXPECT_EQ(j["grid"], nlohmann::json({{"ranks", kRanks}, {"tp", 1}, {"dp", kRanks}}));
  EXPECT_EQ(j["n_layer"], kLayers);
  EXPECT_EQ(j["stages"], nlohmann::json::parse(R"([{"stage":1,"first_step":1},{"stage":2,"first_step":11},
                                                    {"stage":3,"first_step":21}])"));
  EXPECT_EQ(j["config_first_line"], "# est test");
  EXPECT_FALSE(j.contains("verify"));
}

TEST(InspectTrace, PrintsATable) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 25);
  const Inspected r = inspect(path, true, false);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("rows               25, steps 1..25"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stages             1 from step 1, 2 from step 11, 3 from step 21"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("grid               2 ranks = tp 1 x dp 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verify: ok"), std::string::npos) << r.out;
}

TEST(InspectTrace, ReadsATraceWhileItIsWritten) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  TraceWriter w(path, metadata(), -1, 10);
  for (int64_t s = 1; s <= 14; ++s) w.append(row(s));
  const Inspected r = inspect(path, true, true);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.json()["rows"], 10);
  EXPECT_EQ(r.json()["last_val_loss"]["step"], 10);
}

TEST(InspectTrace, VerifyReportsUnevenDatasetsAndStepsOutOfOrder) {
  TempDir dir;
  const std::string path = dir.file("trace.h5");
  write_rows(path, 1, 5);
  {
    H5Handle f(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open"), H5Fclose);
    H5Handle loss(h5_check(H5Dopen2(f.get(), "loss", H5P_DEFAULT), "loss"), H5Dclose);
    const hsize_t six = 6;
    h5_check(H5Dset_extent(loss.get(), &six), "extend loss");
    H5Handle step(h5_check(H5Dopen2(f.get(), "step", H5P_DEFAULT), "step"), H5Dclose);
    const int64_t steps[5] = {1, 2, 2, 4, 5};
    h5_check(H5Dwrite(step.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps), "write step");
  }
  const Inspected r = inspect(path, true, true);
  EXPECT_EQ(r.status, 1);
  const nlohmann::json v = r.json()["verify"];
  EXPECT_FALSE(v["ok"].get<bool>());
  ASSERT_EQ(v["problems"].size(), 2u) << v.dump();
  EXPECT_EQ(v["problems"][0], "dataset loss has 6 rows, step has 5");
  EXPECT_EQ(v["problems"][1], "step 2 (row 2) follows step 2");
}

TEST(InspectTrace, RejectsWhatIsNotAnEstFile) {
  TempDir dir;
  const std::string plain = dir.file("plain.h5"), odd = dir.file("odd.h5"), text = dir.file("notes.txt");
  { H5Handle f(h5_check(H5Fcreate(plain.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create"), H5Fclose); }
  {
    H5Handle f(h5_check(H5Fcreate(odd.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create"), H5Fclose);
    H5Handle type(h5_check(H5Tcopy(H5T_C_S1), "type"), H5Tclose);
    H5Tset_size(type.get(), 6);
    H5Handle space(h5_check(H5Screate(H5S_SCALAR), "space"), H5Sclose);
    H5Handle a(h5_check(H5Acreate2(f.get(), "est_kind", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), "attr"),
               H5Aclose);
    h5_check(H5Awrite(a.get(), type.get(), "banana"), "write");
  }
  std::FILE* t = std::fopen(text.c_str(), "w");
  std::fputs("not HDF5\n", t);
  std::fclose(t);
  expect_input_error([&] { inspect_file(dir.file("missing.h5"), false, false); }, dir.file("missing.h5"), "file");
  expect_input_error([&] { inspect_file(text, false, false); }, text, "file");
  expect_input_error([&] { inspect_file(plain, false, false); }, plain, "est_kind");
  expect_input_error([&] { inspect_file(odd, true, false); }, odd, "est_kind");
}


// Found by fuzzing (tests/fuzz/regressions/fuzz_trace): a column read as one value per row overflowed its buffer
// when the dataset held more (a two-dimensional step), and a scalar attribute holding several values the variable
// it was read into. Both readers, est inspect and a resume, refuse them.
TEST(InspectTrace, RejectsAColumnOrAnAttributeOfTheWrongShape) {
  TempDir dir;
  const std::string column = dir.file("column.h5"), attribute = dir.file("attribute.h5");
  write_rows(column, 1, 5);
  write_rows(attribute, 1, 5);
  {
    H5Handle f(h5_check(H5Fopen(column.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open"), H5Fclose);
    h5_check(H5Ldelete(f.get(), "step", H5P_DEFAULT), "delete step");
    const hsize_t dims[2] = {5, 2};
    H5Handle space(h5_check(H5Screate_simple(2, dims, nullptr), "space"), H5Sclose);
    H5Handle d(h5_check(H5Dcreate2(f.get(), "step", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                   H5P_DEFAULT), "step"),
               H5Dclose);
  }
  {
    H5Handle f(h5_check(H5Fopen(attribute.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open"), H5Fclose);
    h5_check(H5Adelete(f.get(), "n_layer"), "delete n_layer");
    const hsize_t n = 2;
    const int32_t layers[2] = {kLayers, kLayers};
    H5Handle space(h5_check(H5Screate_simple(1, &n, nullptr), "space"), H5Sclose);
    H5Handle a(h5_check(H5Acreate2(f.get(), "n_layer", H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                        "n_layer"),
               H5Aclose);
    h5_check(H5Awrite(a.get(), H5T_NATIVE_INT32, layers), "write n_layer");
  }
  expect_input_error([&] { inspect_file(column, true, true); }, column, "step");
  expect_input_error([&] { TraceWriter w(column, metadata(), 3); }, column, "step");
  expect_input_error([&] { inspect_file(attribute, true, true); }, attribute, "n_layer");
  expect_input_error([&] { TraceWriter w(attribute, metadata(), 3); }, attribute, "n_layer");
}

}  // namespace
}  // namespace est
