#pragma once
// The communicator for collectives on buffers in the default memory space (activations and gradients, device
// memory in CUDA builds). CPU builds: MPI on host memory (device_communicator_mpi.cpp). CUDA builds: NCCL on the
// stream the Kokkos kernels and cuBLAS run on (device_communicator_nccl.cpp), since MPI is not assumed to be
// CUDA-aware; its few host-memory collectives (losses, norms, timings) go through MPI on the same group.
#include <mpi.h>

#include <memory>

#include "parallel/communicator.hpp"

namespace est {

// Collective over comm; in CUDA builds Kokkos must be initialised (it has chosen this rank's device).
std::unique_ptr<Communicator> make_device_communicator(MPI_Comm comm);

}  // namespace est
