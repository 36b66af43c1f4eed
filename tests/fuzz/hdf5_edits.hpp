#pragma once
// Structure-aware inputs for est's HDF5 readers (checkpoints, traces). HDF5 1.10 is not instrumented and is known
// to crash on arbitrary malformed bytes; its own parser is not what these harnesses test. The fuzz input instead
// directs edits, made through HDF5's API, of a well-formed file that est's writer made: attributes removed, added
// or rewritten with another type, shape or value; datasets removed, recreated with another shape or type,
// resized, or overwritten with NaNs, infinities and extreme values. est's reader then reads the edited file.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

namespace est::fuzz {

// Writes `base` (a whole HDF5 file) to `path` and applies the edits `in` describes; edits HDF5 refuses (on an
// object an earlier edit removed, say) are skipped.
void write_edited(const std::string& path, const std::string& base, FuzzedDataProvider& in);

// Aborts if an HDF5 file or an object in one is still open: every path out of est's readers, errors included, must
// close what it opened (a leaked file stays locked and open to the end of the process).
void expect_all_closed();

// The bytes of the file at `path`, for a base.
std::string read_bytes(const std::string& path);

}  // namespace est::fuzz
