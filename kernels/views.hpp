#pragma once
// View types shared by every kernel. Tensors live in flat buffers in the default memory space; kernels take
// unmanaged row-major views onto them, so the same source is the host and the CUDA build.
#include <Kokkos_Core.hpp>
#include <cstdint>

namespace est {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;
using Unmanaged = Kokkos::MemoryTraits<Kokkos::Unmanaged>;

template <class T>
using Vec = Kokkos::View<T*, Kokkos::LayoutRight, MemSpace, Unmanaged>;
template <class T>
using Mat = Kokkos::View<T**, Kokkos::LayoutRight, MemSpace, Unmanaged>;

using VecF = Vec<float>;
using CVecF = Vec<const float>;
using MatF = Mat<float>;
using CMatF = Mat<const float>;
using CVecI = Vec<const int>;

// An owning flat buffer.
using Buffer = Kokkos::View<float*, Kokkos::LayoutRight, MemSpace>;

inline MatF mat(float* p, int64_t rows, int64_t cols) { return MatF(p, rows, cols); }
inline CMatF cmat(const float* p, int64_t rows, int64_t cols) { return CMatF(p, rows, cols); }
inline VecF vec(float* p, int64_t n) { return VecF(p, n); }
inline CVecF cvec(const float* p, int64_t n) { return CVecF(p, n); }

using RangePolicy = Kokkos::RangePolicy<ExecSpace>;
using TeamPolicy = Kokkos::TeamPolicy<ExecSpace>;
using TeamMember = TeamPolicy::member_type;

// Kernels run on the host (Serial, OpenMP, Threads backends) rather than on a GPU (whose memory may still be
// host-accessible, as unified memory is).
constexpr bool kHostKernels = Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible;

// A team per row: on a GPU as many threads as Kokkos picks; on the host one thread, as the host path of the row
// reductions (team_reduce.hpp) computes a whole row in the thread that calls it.
inline TeamPolicy teams_per_row(int rows) {
  if constexpr (kHostKernels) {
    return TeamPolicy(rows, 1);
  } else {
    return TeamPolicy(rows, Kokkos::AUTO);
  }
}

}  // namespace est
