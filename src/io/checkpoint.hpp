#pragma once
// HDF5 checkpoints: one file per checkpoint with every parameter and AdamW moment at its global (unsplit) shape,
// written by all ranks in one collective operation per dataset (each rank its hyperslabs) and readable on any
// tensor x data-parallel layout. A file appears under its name only when complete (written as .tmp, synced,
// renamed), and every dataset carries a checksum of its global contents that any layout can verify.
#include <mpi.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataloader.hpp"
#include "model/model.hpp"
#include "optim/optimizer.hpp"
#include "parallel/process_grid.hpp"

namespace est {

constexpr int kCheckpointFormat = 1;

// Everything besides the tensors that a resumed run needs to continue exactly.
struct TrainingState {
  int64_t step = 0;              // optimizer steps done
  int64_t stage = 0;             // EST stage of the next step
  uint64_t est_seed = 0;         // the subnetwork draws' key (Philox)
  uint64_t data_seed = 0;        // the training data order's key
  int strata = 1;                // the draws' strata (files without it: their writer's tp, the default then)
  DataLoader::Position data;     // where the next batch comes from
  std::vector<double> balancer;  // LoadBalancer::state(); restored only on the same layout
  int tp = 1, dp = 1;            // the layout that wrote it
  std::string config_yaml, schedule_yaml;
  double flops_so_far = 0, train_seconds = 0;
};

// Collective over the grid's world: writes `path` (through path.tmp, fsync, rename). Returns whether every dataset
// was written with collective MPI-IO: HDF5 quietly falls back to independent I/O (e.g. on a type conversion), and
// the answer is asked of it after each write. A checkpoint the file system has no room for is refused before
// writing; a write that fails on any rank throws CollectiveError (status kExitIoError, "path.tmp: writing the
// checkpoint of step N: <the OS's reason>") on every rank at once, path.tmp removed.
bool save_checkpoint(const std::string& path, const Model& model, const AdamW& optimizer, const TrainingState& state,
                     const ProcessGrid& grid);

// Collective: verifies every checksum, then reads this rank's share of the parameters and moments into `model`
// and `optimizer` (any layout) and returns the state. Throws InputError naming the file and the dataset or
// attribute for a file that is missing, not HDF5, of another model shape, truncated or corrupted.
TrainingState load_checkpoint(const std::string& path, Model& model, AdamW& optimizer, const ProcessGrid& grid);

// The checkpoints in `dir` (ckpt_%08d.h5), newest first.
std::vector<std::string> list_checkpoints(const std::string& dir);
// The partial checkpoints (ckpt_*.h5.tmp) a killed run left in `dir`.
std::vector<std::string> partial_checkpoints(const std::string& dir);
std::string checkpoint_path(const std::string& dir, int64_t step);

// One process, no model needed (est inspect): what the file holds, and the datasets whose checksum does not match.
nlohmann::json describe_checkpoint(const std::string& path);
std::vector<std::string> verify_checkpoint(const std::string& path);

}  // namespace est
