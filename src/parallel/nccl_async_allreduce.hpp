#pragma once
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <vector>

#include "parallel/async_allreduce.hpp"

namespace est {

// CUDA builds: the sums run on a side stream with an NCCL communicator of their own. Each waits, by an event, for
// the kernels issued so far on `compute` (the stream the Kokkos kernels and cuBLAS run on), so the backward pass
// goes on while the bucket before travels; a pair of events around each times it. Construction is collective
// over comm and uses the current CUDA device.
class NcclAsyncAllreduce : public AsyncAllreduce {
 public:
  NcclAsyncAllreduce(MPI_Comm comm, cudaStream_t compute);
  ~NcclAsyncAllreduce() override;
  NcclAsyncAllreduce(const NcclAsyncAllreduce&) = delete;
  NcclAsyncAllreduce& operator=(const NcclAsyncAllreduce&) = delete;

  void start(float* data, int64_t n) override;
  void wait_all() override;
  void sum_now(float* data, int64_t n) override;
  bool overlaps() const override { return true; }

 private:
  cudaStream_t compute_, side_ = nullptr;
  ncclComm_t nccl_ = nullptr;
  std::vector<cudaEvent_t> events_;
  int started_ = 0;  // since the last wait_all
};

}  // namespace est
