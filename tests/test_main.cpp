#include <gtest/gtest.h>
#include <mpi.h>

#include "train/runtime.hpp"

// MPI first, then Kokkos on OMP_NUM_THREADS threads (or every core), as the est binary starts them; suites that
// need several ranks run under mpiexec.
int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = 0;
  {
    const est::KokkosSession kokkos(est::resolve_threads(0));
    rc = RUN_ALL_TESTS();
  }
  MPI_Finalize();
  return rc;
}
