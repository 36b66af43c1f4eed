#pragma once
// The memory plan: what one rank of a training run (or of `est bench`) holds, item by item, worked out from the
// config before anything is allocated, so that a run that cannot fit ends at once with an error that says what
// to change, instead of an allocator failure deep in the model. The model's buffers come from
// model_buffer_sizes, the list the model allocates from; then the AdamW moments, the collectives' temporaries,
// the host staging of checkpoints and the model file, and the process's runtime (libraries, MPI, Kokkos: its
// resident memory when the plan is made).
//
// In a CPU build everything is host memory. In a CUDA build the model's buffers, the moments and the
// collectives' buffers are device memory, the staging and the runtime host memory.
#include <mpi.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace est {

struct MemoryItem {
  std::string name;
  int64_t bytes = 0;
  bool device = true;               // in the kernels' memory space (the GPU in a CUDA build)
  std::vector<std::string> shrink;  // the config keys that make it smaller
  bool resident = false;            // held already when the plan is made: free memory does not count it
  std::string note;                 // a line of context under the item in the table
};

// A rank's place in a layout: the tensor-parallel size, the data-parallel replicas, the sequences it may hold.
struct RankLayout {
  int tp = 1, dp = 1, batch = 1;
};

struct MemoryPlan {
  std::string config;  // the config's path
  RankLayout layout;
  int seq_len = 0;
  std::vector<MemoryItem> items;

  int64_t total() const;
  int64_t device_bytes() const;
  const MemoryItem& largest() const;
};

// A training run's layout on `ranks` ranks (0: parallel.tp, one replica); InputError naming --ranks when
// parallel.tp does not divide them.
RankLayout training_layout(const Config& cfg, int ranks);
// `shape`: cfg.shape(), or the model file's when training starts from one (the config has checked that it
// splits over parallel.tp). `training`: with the staging of checkpoints and the model file, which `est bench`
// does not write.
MemoryPlan plan_memory(const Config& cfg, const ModelShape& shape, const RankLayout& layout, bool training = true);

nlohmann::json to_json(const MemoryPlan& plan);
// The table `est plan` prints.
std::string format_memory_plan(const MemoryPlan& plan);
// One line for the start banner: the total and its largest item.
std::string memory_plan_summary(const MemoryPlan& plan);

// Collective over `world`: ends a run whose ranks do not fit in what is free before any of them allocates. The
// ranks on one node share its memory (their plans add up); in a CUDA build each rank's device items are held
// against its GPU's free memory as well. Every rank throws the same CollectiveError; the message (status 2)
// names the config, the need and what is free, the largest item and the keys that shrink it.
void require_fits(const MemoryPlan& plan, MPI_Comm world);

}  // namespace est
