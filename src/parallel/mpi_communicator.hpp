#pragma once
#include <mpi.h>

#include "parallel/communicator.hpp"

namespace est {

// MPI collectives on host memory (Kokkos' Serial and OpenMP builds; CUDA-aware MPI would take device buffers).
class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {}
  int rank() const override;
  int size() const override;
  void allreduce_sum(float* data, int64_t n) override;
  void allreduce_sum(double* data, int64_t n) override;
  void allreduce_max(double* data, int64_t n) override;
  void allgather(const double* in, int64_t n, double* out) override;
  void barrier() override;

 private:
  template <class F>
  void timed(int64_t bytes, F&& collective);
  MPI_Comm comm_;
};

}  // namespace est
