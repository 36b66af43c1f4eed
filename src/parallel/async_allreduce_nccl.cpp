#include <Kokkos_Core.hpp>

#include "parallel/async_allreduce.hpp"
#include "parallel/nccl_async_allreduce.hpp"

namespace est {

std::unique_ptr<AsyncAllreduce> make_async_allreduce(MPI_Comm comm) {
  return std::make_unique<NcclAsyncAllreduce>(comm, Kokkos::DefaultExecutionSpace().cuda_stream());
}

}  // namespace est
