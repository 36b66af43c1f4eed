#pragma once
// est inspect FILE.h5 [--verify] [--json]: what an est HDF5 file (a training trace or a checkpoint) holds, read in
// one process. A trace may be open for SWMR writing by a running job; it is then read as a SWMR reader.
#include <string>

namespace est {

// Prints the summary (a table, or JSON) to stdout; returns 0, or 1 when `verify` found problems. Throws
// InputError naming the file and "file" or "est_kind" for a file that is missing, not HDF5, or not est's.
int inspect_file(const std::string& path, bool verify, bool as_json);

}  // namespace est
