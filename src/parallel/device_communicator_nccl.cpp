#include <Kokkos_Core.hpp>

#include "parallel/device_communicator.hpp"
#include "parallel/nccl_communicator.hpp"

namespace est {

std::unique_ptr<Communicator> make_device_communicator(MPI_Comm comm) {
  return std::make_unique<NcclCommunicator>(comm, Kokkos::DefaultExecutionSpace().cuda_stream());
}

}  // namespace est
