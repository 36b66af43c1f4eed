#include "parallel/process_grid.hpp"

#include <stdexcept>
#include <string>

#include "parallel/device_communicator.hpp"
#include "parallel/mpi_communicator.hpp"

namespace est {

ProcessGrid::ProcessGrid(MPI_Comm world, int tp) : tp_(tp) {
  MPI_Comm_rank(world, &world_rank_);
  MPI_Comm_size(world, &world_size_);
  if (tp < 1 || world_size_ % tp != 0)
    throw std::invalid_argument("tensor-parallel size " + std::to_string(tp) + " does not divide " +
                                std::to_string(world_size_) + " ranks");
  MPI_Comm_dup(world, &world_);
  MPI_Comm_split(world_, dp_rank(), tp_rank(), &tp_mpi_);
  MPI_Comm_split(world_, tp_rank(), dp_rank(), &dp_mpi_);
  // The world carries host numbers only (timings, stop signals); the groups also reduce activations and gradients.
  world_comm_ = std::make_unique<MpiCommunicator>(world_);
  tp_comm_ = make_device_communicator(tp_mpi_);
  dp_comm_ = make_device_communicator(dp_mpi_);
  if (dp_size() > 1) dp_async_ = make_async_allreduce(dp_mpi_);
}

ProcessGrid::~ProcessGrid() {
  // The communicators go before the MPI groups they use.
  dp_async_.reset();
  world_comm_.reset();
  tp_comm_.reset();
  dp_comm_.reset();
  for (MPI_Comm* c : {&tp_mpi_, &dp_mpi_, &world_})
    if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
}

}  // namespace est
