#include "parallel/nccl_setup.hpp"

#include <stdexcept>
#include <string>

namespace est {

void nccl_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
}

ncclComm_t nccl_comm_over(MPI_Comm comm) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // NCCL's bootstrap needs one id shared by the group; MPI is already connected, so it carries it.
  ncclUniqueId id{};
  if (rank == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, int(sizeof(id)), MPI_BYTE, 0, comm);
  ncclComm_t nccl = nullptr;
  nccl_check(ncclCommInitRank(&nccl, size, id, rank), "ncclCommInitRank (each rank of a group needs a GPU of its own)");
  return nccl;
}

}  // namespace est
