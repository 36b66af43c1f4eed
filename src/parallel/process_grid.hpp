#pragma once
// The process grid and its communicators, in one place (after Megatron-Core's parallel_state). Tensor-parallel
// groups are consecutive ranks, so they stay inside a node; a data-parallel group takes the ranks at the same
// place in every tensor-parallel group. Layers take the grid as an argument.
#include <mpi.h>

#include <memory>

#include "parallel/async_allreduce.hpp"
#include "parallel/communicator.hpp"

namespace est {

class ProcessGrid {
 public:
  // tp must divide the world size; the data-parallel size is world / tp.
  ProcessGrid(MPI_Comm world, int tp);
  ~ProcessGrid();
  ProcessGrid(const ProcessGrid&) = delete;
  ProcessGrid& operator=(const ProcessGrid&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int tp_rank() const { return world_rank_ % tp_; }
  int tp_size() const { return tp_; }
  int dp_rank() const { return world_rank_ / tp_; }
  int dp_size() const { return world_size_ / tp_; }

  Communicator& world() const { return *world_comm_; }
  // The world's MPI communicator, for libraries that take one (parallel HDF5).
  MPI_Comm world_mpi() const { return world_; }
  Communicator& tp() const { return *tp_comm_; }
  Communicator& dp() const { return *dp_comm_; }
  // The data-parallel group's non-blocking sums, for the gradient's buckets (null with one replica).
  AsyncAllreduce* dp_async() const { return dp_async_.get(); }

 private:
  int world_rank_ = 0, world_size_ = 1, tp_ = 1;
  MPI_Comm world_ = MPI_COMM_NULL, tp_mpi_ = MPI_COMM_NULL, dp_mpi_ = MPI_COMM_NULL;
  std::unique_ptr<Communicator> world_comm_, tp_comm_, dp_comm_;
  std::unique_ptr<AsyncAllreduce> dp_async_;
};

}  // namespace est
