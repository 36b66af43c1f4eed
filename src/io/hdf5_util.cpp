#include "io/hdf5_util.hpp"

#include <filesystem>
#include <vector>

#include "input_error.hpp"

namespace est::h5 {
namespace {

std::string attribute_what(const std::string& where, const char* name, const char* call) {
  return where + ": " + call + " of attribute " + name;
}

H5Handle utf8_string_type(const std::string& where) {
  H5Handle t(h5_check(H5Tcopy(H5T_C_S1), where + ": H5Tcopy"), H5Tclose);
  h5_check(H5Tset_size(t.get(), H5T_VARIABLE), where + ": H5Tset_size");
  h5_check(H5Tset_cset(t.get(), H5T_CSET_UTF8), where + ": H5Tset_cset");
  return t;
}

H5Handle create_attribute(hid_t obj, const char* name, hid_t type, const std::string& where) {
  H5Handle space(h5_check(H5Screate(H5S_SCALAR), attribute_what(where, name, "H5Screate")), H5Sclose);
  return H5Handle(h5_check(H5Acreate2(obj, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                           attribute_what(where, name, "H5Acreate2")),
                  H5Aclose);
}

H5Handle attribute_type(hid_t attr, const char* name, const std::string& where) {
  return H5Handle(h5_check(H5Aget_type(attr), attribute_what(where, name, "H5Aget_type")), H5Tclose);
}

std::string read_variable_string(hid_t attr, hid_t file_type, const char* name, const std::string& where) {
  H5Handle mem = utf8_string_type(where);
  h5_check(H5Tset_cset(mem.get(), H5Tget_cset(file_type)), attribute_what(where, name, "H5Tset_cset"));
  char* s = nullptr;
  h5_check(H5Aread(attr, mem.get(), &s), attribute_what(where, name, "H5Aread"));
  std::string out = s ? s : "";
  H5free_memory(s);
  return out;
}

// Fixed-size strings (h5py's numpy bytes, other writers) may be NUL-padded.
std::string read_fixed_string(hid_t attr, hid_t file_type, const char* name, const std::string& where) {
  std::string out(H5Tget_size(file_type), '\0');
  h5_check(H5Aread(attr, file_type, out.data()), attribute_what(where, name, "H5Aread"));
  return out.substr(0, out.find('\0'));
}

}  // namespace

H5Handle try_open_file(const std::string& path, unsigned flags, hid_t fapl) {
  QuietErrors quiet;
  return H5Handle(H5Fopen(path.c_str(), flags, fapl), H5Fclose);
}

bool is_hdf5(const std::string& path) {
  QuietErrors quiet;
  return H5Fis_hdf5(path.c_str()) > 0;
}

H5Handle open_for_reading(const std::string& path) {
  if (!std::filesystem::exists(path)) throw InputError(path, "file", "no such file");
  if (!is_hdf5(path)) throw InputError(path, "file", "not an HDF5 file");
  H5Handle file = try_open_file(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
  if (!file.valid()) file = try_open_file(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (!file.valid()) throw InputError(path, "file", "HDF5 cannot open it");
  return file;
}

H5Handle open_dataset(hid_t file, const std::string& name, const std::string& path) {
  // Opening is the probe: H5Lexists fails outright on a path whose group is missing.
  QuietErrors quiet;
  const hid_t d = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  if (d < 0) throw InputError(path, name, "missing dataset");
  return H5Handle(d, H5Dclose);
}

void write_attribute(hid_t obj, const char* name, const std::string& value, const std::string& where) {
  H5Handle type = utf8_string_type(where);
  H5Handle a = create_attribute(obj, name, type.get(), where);
  const char* s = value.c_str();
  h5_check(H5Awrite(a.get(), type.get(), &s), attribute_what(where, name, "H5Awrite"));
}

void write_attribute(hid_t obj, const char* name, int64_t value, hid_t type, const std::string& where) {
  H5Handle a = create_attribute(obj, name, type, where);
  h5_check(H5Awrite(a.get(), H5T_NATIVE_INT64, &value), attribute_what(where, name, "H5Awrite"));
}

H5Handle open_scalar_attribute(hid_t obj, const char* name, const std::string& file) {
  if (h5_check(H5Aexists(obj, name), attribute_what(file, name, "H5Aexists")) == 0) return {};
  H5Handle a(h5_check(H5Aopen(obj, name, H5P_DEFAULT), attribute_what(file, name, "H5Aopen")), H5Aclose);
  H5Handle space(h5_check(H5Aget_space(a.get()), attribute_what(file, name, "H5Aget_space")), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) throw InputError(file, name, "expected a single value");
  return a;
}

std::optional<std::string> read_string_attribute(hid_t obj, const char* name, const std::string& file) {
  H5Handle a = open_scalar_attribute(obj, name, file);
  if (!a.valid()) return std::nullopt;
  H5Handle t = attribute_type(a.get(), name, file);
  if (H5Tget_class(t.get()) != H5T_STRING) throw InputError(file, name, "expected a string attribute");
  const bool variable = h5_check(H5Tis_variable_str(t.get()), attribute_what(file, name, "H5Tis_variable_str"));
  return variable ? read_variable_string(a.get(), t.get(), name, file)
                  : read_fixed_string(a.get(), t.get(), name, file);
}

std::optional<int64_t> read_int_attribute(hid_t obj, const char* name, const std::string& file) {
  H5Handle a = open_scalar_attribute(obj, name, file);
  if (!a.valid()) return std::nullopt;
  if (H5Tget_class(attribute_type(a.get(), name, file).get()) != H5T_INTEGER)
    throw InputError(file, name, "expected an integer attribute");
  int64_t v = 0;
  h5_check(H5Aread(a.get(), H5T_NATIVE_INT64, &v), attribute_what(file, name, "H5Aread"));
  return v;
}

hsize_t rows(hid_t dataset, const std::string& where) {
  H5Handle space(h5_check(H5Dget_space(dataset), where + ": H5Dget_space"), H5Sclose);
  const int rank = static_cast<int>(h5_check(H5Sget_simple_extent_ndims(space.get()), where + ": extent"));
  if (rank < 1) return 1;
  std::vector<hsize_t> dims(rank);
  h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where + ": extent");
  return dims[0];
}

hsize_t column_rows(hid_t dataset, const std::string& file, const std::string& name) {
  const std::string where = file + ": dataset " + name;
  H5Handle space(h5_check(H5Dget_space(dataset), where + ": H5Dget_space"), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1) throw InputError(file, name, "expected a one-dimensional dataset");
  return rows(dataset, where);
}

}  // namespace est::h5
