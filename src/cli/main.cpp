// est: the command line. Bad input of any kind ends with one "est: error: ..." line and exit status 2; a training
// run stopped by SIGUSR1 or SIGTERM checkpoints and exits with status 75 (resume with --resume auto). How every
// MPI rank agrees on an error: cli/exit_status.hpp.
#include <hdf5.h>
#include <mpi.h>

#include "cli/commands.hpp"
#include "cli/exit_status.hpp"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"est: Evolving Subnetwork Training for transformer language models"};
  app.require_subcommand(1);
  std::vector<est::cli::Command> commands;
  for (auto add : {est::cli::add_training_commands, est::cli::add_tool_commands, est::cli::add_job_commands}) {
    for (auto& c : add(app)) commands.push_back(std::move(c));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = est::cli::world_rank() == 0 ? app.exit(e) : e.get_exit_code();
    return code == 0 ? 0 : est::cli::kExitBadInput;
  }
  for (const auto& c : commands) {
    if (*c.app) return c.run();
  }
  return est::cli::kExitBadInput;  // require_subcommand makes this unreachable
}

}  // namespace

int main(int argc, char** argv) {
  // HDF5 starts before MPI and never shuts down: a file whose close failed (a full disk) stays broken inside it,
  // and closing it again at shutdown, as HDF5 would at exit or in MPI_Finalize, crashes. est closes every file it
  // writes itself. Its failures reach the user translated (io/io_error.hpp), not as its error stack.
  H5dont_atexit();
  H5open();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  int provided = 0;
  // The gradient's data-parallel sums run on a thread of their own (parallel/async_allreduce_mpi.cpp).
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  const int rc = run(argc, argv);
  MPI_Finalize();
  return rc;
}
