#include "parallel/device_communicator.hpp"
#include "parallel/mpi_communicator.hpp"

namespace est {

std::unique_ptr<Communicator> make_device_communicator(MPI_Comm comm) { return std::make_unique<MpiCommunicator>(comm); }

}  // namespace est
