#pragma once
// What every NCCL user of a group needs: errors of the CUDA and NCCL calls as exceptions, and a communicator over
// an MPI group.
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

namespace est {

void nccl_check(cudaError_t e, const char* what);
void nccl_check(ncclResult_t r, const char* what);

// Collective over comm; uses the current CUDA device.
ncclComm_t nccl_comm_over(MPI_Comm comm);

}  // namespace est
