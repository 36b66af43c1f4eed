#include <gtest/gtest.h>
#include <mpi.h>

#include <Kokkos_Core.hpp>

// MPI first, then Kokkos, as the est binary does; suites that need several ranks run under mpiexec.
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    rc = RUN_ALL_TESTS();
  }
  MPI_Finalize();
  return rc;
}
