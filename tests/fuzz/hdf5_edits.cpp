#include "hdf5_edits.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "io/hdf5_handle.hpp"

namespace est::fuzz {
namespace {

constexpr int kMaxEdits = 8;
// Bounds what an edit may allocate, so that the reader, not the editor, meets the large sizes.
constexpr hsize_t kMaxElements = hsize_t(1) << 16;

using Strings = std::vector<std::string>;

struct Catalog {
  Strings objects;  // "/" first, then every group and dataset
  Strings datasets;
  std::vector<std::pair<std::string, std::string>> attributes;  // (object, name)
  Strings attribute_names;  // each once: any of them may be added to any object
};

herr_t add_link(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<Strings*>(out)->push_back(std::string("/") + name);
  return 0;
}

herr_t add_attribute(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<Strings*>(out)->push_back(name);
  return 0;
}

H5Handle open_object(hid_t file, const std::string& path) {
  return {H5Oopen(file, path.c_str(), H5P_DEFAULT), H5Oclose};
}

Catalog catalog(hid_t file) {
  Catalog c;
  c.objects.push_back("/");
  H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, add_link, &c.objects);
  for (const std::string& path : c.objects) {
    const H5Handle obj = open_object(file, path);
    if (H5Iget_type(obj.get()) == H5I_DATASET) c.datasets.push_back(path);
    Strings names;
    H5Aiterate2(obj.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, add_attribute, &names);
    for (const std::string& name : names) {
      c.attributes.emplace_back(path, name);
      if (std::find(c.attribute_names.begin(), c.attribute_names.end(), name) == c.attribute_names.end())
        c.attribute_names.push_back(name);
    }
  }
  return c;
}

template <class T>
const T& pick(FuzzedDataProvider& in, const std::vector<T>& from) {
  return from[in.ConsumeIntegralInRange<size_t>(0, from.size() - 1)];
}

// Small values (a wrong count, stratum or layout) pass est's first checks; the extremes break arithmetic.
int64_t some_integer(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0:
      return in.ConsumeIntegralInRange<int64_t>(-2, 16);
    case 1:
      return in.PickValueInArray<int64_t>({std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                                           std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(),
                                           int64_t(1) << 32});
    default:
      return in.ConsumeIntegral<int64_t>();
  }
}

double some_number(FuzzedDataProvider& in) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0:
      return in.PickValueInArray<double>(
          {std::numeric_limits<double>::quiet_NaN(), inf, -inf, -0.0, 1e300, -1e300, 5e-324});
    case 1:
      return double(some_integer(in));
    default:
      return in.ConsumeFloatingPoint<double>();
  }
}

std::string some_string(FuzzedDataProvider& in) {
  return in.ConsumeBool() ? in.PickValueInArray<std::string>({"checkpoint", "trace", ""})
                          : in.ConsumeRandomLengthString(64);
}

// The types est writes, the ones it might meet from other writers (big-endian, narrower), and strings.
enum class Kind { numeric, fixed_string, variable_string };

struct Type {
  H5Handle id;
  Kind kind;
};

Type some_type(FuzzedDataProvider& in, size_t string_size) {
  const int choice = in.ConsumeIntegralInRange(0, 7);
  if (choice < 6) {
    const hid_t numeric[] = {H5T_STD_I64LE, H5T_STD_I32LE,  H5T_STD_U64LE,
                             H5T_STD_U8LE,  H5T_IEEE_F64LE, H5T_IEEE_F32BE};
    return {H5Handle(H5Tcopy(numeric[choice]), H5Tclose), Kind::numeric};
  }
  H5Handle s(H5Tcopy(H5T_C_S1), H5Tclose);
  const bool variable = choice == 7;
  H5Tset_size(s.get(), variable ? H5T_VARIABLE : std::max<size_t>(string_size, 1));
  H5Tset_cset(s.get(), H5T_CSET_UTF8);
  return {std::move(s), variable ? Kind::variable_string : Kind::fixed_string};
}

// Writes the values as `type`: numbers converted by HDF5; strings as pointers (variable length) or as records of
// the type's size.
void write_values(hid_t attr, const Type& type, const Strings& strings, const std::vector<double>& numbers) {
  if (type.kind == Kind::numeric) {
    H5Awrite(attr, H5T_NATIVE_DOUBLE, numbers.data());
  } else if (type.kind == Kind::variable_string) {
    std::vector<const char*> pointers;
    for (const std::string& x : strings) pointers.push_back(x.c_str());
    H5Awrite(attr, type.id.get(), pointers.data());
  } else {
    std::string records;
    for (std::string x : strings) {
      x.resize(H5Tget_size(type.id.get()), '\0');
      records += x;
    }
    H5Awrite(attr, type.id.get(), records.data());
  }
}

// Sets attribute `name` of `object` (replacing any) to values of a type and shape the input chooses.
void set_attribute(hid_t file, const std::string& object, const std::string& name, FuzzedDataProvider& in) {
  const H5Handle obj = open_object(file, object);
  H5Adelete(obj.get(), name.c_str());
  const hsize_t n = in.PickValueInArray<hsize_t>({1, 1, 1, 0, 2, 3, 5});
  const bool scalar = n == 1 && in.ConsumeBool();
  const H5Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  Strings strings;
  std::vector<double> numbers;
  size_t longest = 0;
  for (hsize_t i = 0; i < n; ++i) {
    strings.push_back(some_string(in));
    numbers.push_back(some_number(in));
    longest = std::max(longest, strings.back().size());
  }
  const Type type = some_type(in, longest);
  const H5Handle attr(H5Acreate2(obj.get(), name.c_str(), type.id.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                      H5Aclose);
  write_values(attr.get(), type, strings, numbers);
}

std::vector<hsize_t> dims_of(hid_t dataset) {
  const H5Handle space(H5Dget_space(dataset), H5Sclose);
  std::vector<hsize_t> dims(size_t(std::max(H5Sget_simple_extent_ndims(space.get()), 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

// Every value of a numeric dataset as double (none for another type).
std::vector<double> values_of(hid_t dataset) {
  const H5Handle space(H5Dget_space(dataset), H5Sclose);
  std::vector<double> v(size_t(std::max<hssize_t>(H5Sget_simple_extent_npoints(space.get()), 0)));
  if (!v.empty() && H5Dread(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) v.clear();
  return v;
}

// The dataspace's element count, or kMaxElements + 1 for any count above the bound.
hsize_t elements(const std::vector<hsize_t>& dims) {
  hsize_t n = 1;
  for (hsize_t d : dims) n = d > 0 && n > kMaxElements / d ? kMaxElements + 1 : n * d;
  return n;
}

// Near the old extent (est's sizes differ from the expected by one or by a dimension) or anywhere small.
hsize_t some_extent(FuzzedDataProvider& in, hsize_t old) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: return old;
    case 1: return old + 1;
    case 2: return old > 0 ? old - 1 : 0;
    default: return in.ConsumeIntegralInRange<hsize_t>(0, 64);
  }
}

herr_t copy_attribute(hid_t from, const char* name, const H5A_info_t*, void* to) {
  const H5Handle a(H5Aopen(from, name, H5P_DEFAULT), H5Aclose);
  const H5Handle type(H5Aget_type(a.get()), H5Tclose), space(H5Aget_space(a.get()), H5Sclose);
  std::vector<unsigned char> buffer(H5Tget_size(type.get()) *
                                    size_t(std::max<hssize_t>(H5Sget_simple_extent_npoints(space.get()), 1)));
  if (H5Aread(a.get(), type.get(), buffer.data()) < 0) return 0;
  const H5Handle b(H5Acreate2(*static_cast<hid_t*>(to), name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                   H5Aclose);
  H5Awrite(b.get(), type.get(), buffer.data());
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, buffer.data());
  return 0;
}

// The dataset's values, repeated or cut to n (zeros for a dataset of another type).
std::vector<double> values_cycled(hid_t dataset, hsize_t n) {
  std::vector<double> values = values_of(dataset);
  values.resize(std::max<size_t>(values.size(), 1));
  std::vector<double> out(n);
  for (hsize_t i = 0; i < n; ++i) out[i] = values[i % values.size()];
  return out;
}

// The dataset at `path` recreated with another shape, type or layout (chunked, extendible like the trace's),
// keeping its attributes and its values.
void replace_dataset(hid_t file, const std::string& path, FuzzedDataProvider& in) {
  const H5Handle old(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  const std::vector<hsize_t> old_dims = dims_of(old.get());
  std::vector<hsize_t> dims(in.ConsumeIntegralInRange<size_t>(0, 3));
  for (size_t i = 0; i < dims.size(); ++i) dims[i] = some_extent(in, i < old_dims.size() ? old_dims[i] : 1);
  if (elements(dims) > kMaxElements) return;
  std::vector<hsize_t> max_dims = dims, chunk = dims;
  const H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dims.empty() && in.ConsumeBool()) {
    max_dims[0] = H5S_UNLIMITED;
    for (hsize_t& c : chunk) c = std::max<hsize_t>(c, 1);
    H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
  }
  const Type type = in.ConsumeBool() ? Type{H5Handle(H5Dget_type(old.get()), H5Tclose), Kind::numeric}
                                     : some_type(in, 8);
  const H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                    : H5Screate_simple(int(dims.size()), dims.data(), max_dims.data()),
                       H5Sclose);
  const std::string staging = path + ".fuzz";
  H5Handle fresh(H5Dcreate2(file, staging.c_str(), type.id.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                 H5Dclose);
  if (!fresh.valid()) return;
  const std::vector<double> data = values_cycled(old.get(), elements(dims));
  if (type.kind == Kind::numeric) H5Dwrite(fresh.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
  hid_t target = fresh.get();
  H5Aiterate2(old.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, copy_attribute, &target);
  fresh.reset();
  H5Ldelete(file, path.c_str(), H5P_DEFAULT);
  H5Lmove(file, staging.c_str(), file, path.c_str(), H5P_DEFAULT, H5P_DEFAULT);
}

void overwrite_values(hid_t file, const std::string& path, FuzzedDataProvider& in) {
  const H5Handle d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  std::vector<double> values = values_of(d.get());
  if (values.empty()) return;
  for (int k = in.ConsumeIntegralInRange(1, 4); k > 0; --k)
    values[in.ConsumeIntegralInRange<size_t>(0, values.size() - 1)] = some_number(in);
  H5Dwrite(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
}

// A chunked dataset grown or shrunk in place (a trace a killed writer extended only in part).
void resize_dataset(hid_t file, const std::string& path, FuzzedDataProvider& in) {
  const H5Handle d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  std::vector<hsize_t> dims = dims_of(d.get());
  for (hsize_t& x : dims) x = some_extent(in, x);
  if (elements(dims) <= kMaxElements) H5Dset_extent(d.get(), dims.data());
}

void edit(hid_t file, const Catalog& c, FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0:
      if (!c.attributes.empty()) {
        const auto& [object, name] = pick(in, c.attributes);
        H5Adelete_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT);
      }
      break;
    case 1:
      if (!c.attribute_names.empty()) set_attribute(file, pick(in, c.objects), pick(in, c.attribute_names), in);
      break;
    case 2:
      if (c.objects.size() > 1) {
        const std::string& object = c.objects[in.ConsumeIntegralInRange<size_t>(1, c.objects.size() - 1)];
        H5Ldelete(file, object.c_str(), H5P_DEFAULT);
      }
      break;
    case 3:
      if (!c.datasets.empty()) replace_dataset(file, pick(in, c.datasets), in);
      break;
    case 4:
      if (!c.datasets.empty()) overwrite_values(file, pick(in, c.datasets), in);
      break;
    default:
      if (!c.datasets.empty()) resize_dataset(file, pick(in, c.datasets), in);
      break;
  }
}

}  // namespace

void write_edited(const std::string& path, const std::string& base, FuzzedDataProvider& in) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << base;
  const H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) std::abort();  // the base is est's own file: the harness is broken
  const Catalog c = catalog(file.get());
  for (int i = 0; i < kMaxEdits && in.remaining_bytes() > 0; ++i) edit(file.get(), c, in);
}

void expect_all_closed() {
  const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open == 0) return;
  std::fprintf(stderr, "%zd HDF5 files or objects left open\n", open);
  std::abort();
}

std::string read_bytes(const std::string& path) {
  std::ostringstream bytes;
  bytes << std::ifstream(path, std::ios::binary).rdbuf();
  return bytes.str();
}

}  // namespace est::fuzz
