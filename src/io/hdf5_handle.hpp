#pragma once
// Owning HDF5 identifiers, so every path out of a function (errors included) closes what it opened.
#include <hdf5.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

namespace est {

class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  // Gives up ownership, for a close whose result matters.
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// An HDF5 call that failed: what it was doing, and the errno it left (its file drivers fail with the OS's).
class H5Error : public std::runtime_error {
 public:
  H5Error(const std::string& what, int err) : std::runtime_error("HDF5: " + what + " failed"), err_(err) {}
  int err() const { return err_; }

 private:
  int err_;
};

// Throws H5Error with `what` when an HDF5 call reports failure.
inline hid_t h5_check(hid_t id, const std::string& what) {
  if (id < 0) throw H5Error(what, errno);
  return id;
}

}  // namespace est
