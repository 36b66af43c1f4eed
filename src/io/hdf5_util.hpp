#pragma once
// Serial HDF5 helpers beside io/hdf5_handle.hpp, shared by the checkpoint and trace code, est inspect and the
// simulator's calibration: quiet probes, opening files and datasets, scalar attributes. `where` (the file, and the object) starts every failure's message.
#include <cstdint>
#include <optional>
#include <string>

#include "io/hdf5_handle.hpp"

namespace est::h5 {

// Silences HDF5's error-stack printing for calls whose failure is expected and handled (probing a file that may
// not be HDF5, or may be open for SWMR writing). The est program turns printing off for good (its failures are
// translated, io/io_error.hpp); in tests and other programs an unexpected failure's stack stays visible.
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// H5Fopen where failing is an answer, not an error: an invalid handle then, and nothing printed.
H5Handle try_open_file(const std::string& path, unsigned flags, hid_t fapl);
// Whether `path` is an HDF5 file (false for a missing or unreadable one), printing nothing.
bool is_hdf5(const std::string& path);
// An est file to read. A running job holds its trace open for SWMR writing, and then only a SWMR reader may open
// it (one that also tolerates a trace whose writer died); files in an older format (checkpoints) refuse SWMR
// reading and are opened plainly. InputError(path, "file", ...) for a missing, non-HDF5 or unopenable file.
H5Handle open_for_reading(const std::string& path);
// A dataset of `file` (read from `path`); InputError(path, name, "missing dataset") where there is none.
H5Handle open_dataset(hid_t file, const std::string& name, const std::string& path);

// Scalar attributes: strings as variable-length UTF-8, integers as `type` (e.g. H5T_NATIVE_INT32).
void write_attribute(hid_t obj, const char* name, const std::string& value, const std::string& where);
void write_attribute(hid_t obj, const char* name, int64_t value, hid_t type, const std::string& where);

// Attribute `name` of `obj`; invalid when absent. H5Aread writes every value an attribute holds, so one that
// holds other than a single value (a damaged or foreign file's) is InputError(file, name, ...), not read.
H5Handle open_scalar_attribute(hid_t obj, const char* name, const std::string& file);
// Absent → nullopt; present but of another type class, or not a single value → InputError(file, name, ...).
std::optional<std::string> read_string_attribute(hid_t obj, const char* name, const std::string& file);
std::optional<int64_t> read_int_attribute(hid_t obj, const char* name, const std::string& file);

// Rows (first dimension) of a dataset; a scalar holds one.
hsize_t rows(hid_t dataset, const std::string& where);
// Rows of dataset `name` of `file`, which must hold one value per row: H5S_ALL reads every value, so a dataset of
// another rank (a damaged or foreign file's) is InputError(file, name, ...) rather than an overflowing read.
hsize_t column_rows(hid_t dataset, const std::string& file, const std::string& name);

}  // namespace est::h5
