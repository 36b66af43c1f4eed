// NcclCommunicator across MPI ranks, one device each: the float all-reduce on the device, and the double
// all-reduces and all-gather that go through MPI; and the gradient's NcclAsyncAllreduce on its side stream. Exit status, the same on every rank (mpirun returns the first
// non-zero one): 0 passed, 1 mismatch, 77 no usable devices (ctest reports it as skipped).
#include <cuda_runtime_api.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel/nccl_async_allreduce.hpp"
#include "parallel/nccl_communicator.hpp"

namespace {

constexpr int kSkip = 77;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

bool run(int rank, int size, int devices) {
  check(cudaSetDevice(rank % devices), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  const int64_t n = int64_t(1) << 20;
  std::vector<float> host(n, float(rank + 1));
  float* device = nullptr;
  check(cudaMalloc(&device, n * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(device, host.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");

  bool ok = true;
  {
    est::NcclCommunicator comm(MPI_COMM_WORLD, stream);
    comm.allreduce_sum(device, n);
    // Read back on the same stream: the result must not depend on the communicator's timing synchronisation.
    check(cudaMemcpyAsync(host.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    const float sum = float(size * (size + 1) / 2);
    for (float x : host) ok = ok && x == sum;

    double pair[2] = {double(rank + 1), double(-rank)};
    comm.allreduce_sum(pair, 2);
    ok = ok && pair[0] == size * (size + 1) / 2 && pair[1] == -size * (size - 1) / 2;

    double top = rank;
    comm.allreduce_max(&top, 1);
    ok = ok && top == size - 1;

    const double mine[2] = {double(rank), 10.0 * rank};
    std::vector<double> all(2 * size);
    comm.allgather(mine, 2, all.data());
    for (int r = 0; r < size; ++r) ok = ok && all[2 * r] == r && all[2 * r + 1] == 10.0 * r;

    const int64_t bytes = n * int64_t(sizeof(float)) + 5 * int64_t(sizeof(double));
    ok = ok && comm.stats().calls == 4 && comm.stats().bytes == bytes;
  }
  {
    // The gradient's channel: two buckets on the side stream after work on `stream`, then one summed at once.
    est::NcclAsyncAllreduce channel(MPI_COMM_WORLD, stream);
    std::fill(host.begin(), host.end(), float(rank + 1));
    check(cudaMemcpyAsync(device, host.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
    channel.start(device, n / 2);
    channel.start(device + n / 2, n - n / 2);
    channel.wait_all();
    channel.sum_now(device, n / 4);
    check(cudaMemcpy(host.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    const float once = float(size * (size + 1) / 2), twice = float(size) * once;
    for (int64_t i = 0; i < n; ++i) ok = ok && host[size_t(i)] == (i < n / 4 ? twice : once);
    ok = ok && channel.stats().calls == 3 && channel.stats().bytes == (n + n / 4) * int64_t(sizeof(float)) &&
         channel.stats().seconds > 0;
  }
  check(cudaFree(device), "cudaFree");
  check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  // NCCL refuses two ranks of one communicator on one device, so this single-node test needs a device per rank.
  int usable = devices >= size ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &usable, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!usable) {
    if (rank == 0) {
      if (devices == 0)
        std::puts("nccl_comm_smoke: no CUDA device; NCCL communicator compiled and linked only");
      else
        std::printf("nccl_comm_smoke: %d CUDA device(s) for %d ranks; NCCL communicator compiled and linked only\n",
                    devices, size);
    }
    MPI_Finalize();
    return kSkip;
  }

  int ok = 0;
  try {
    ok = run(rank, size, devices) ? 1 : 0;
  } catch (const std::exception& e) {
    // The other ranks may be waiting inside a collective: end them all.
    std::fprintf(stderr, "nccl_comm_smoke: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rank == 0) std::printf("nccl_comm_smoke: %d ranks: %s\n", size, ok ? "OK" : "MISMATCH");
  MPI_Finalize();
  return ok ? 0 : 1;
}
