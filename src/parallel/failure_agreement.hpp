#pragma once
// Ending a collective job cleanly when some of its ranks fail: at a point every rank reaches, a failure on any
// rank becomes the same CollectiveError (collective_error.hpp) on all of them, so none is left waiting in a
// collective that the others never enter.
#include <mpi.h>

#include <exception>

namespace est {

// The exit status an error asks for: 2 for bad input, kExitIoError for a file that could not be written, a
// CollectiveError's own, else 1.
int exit_status_of(const std::exception_ptr& error);

// Collective over `comm`. When any rank passes a failure, every rank throws CollectiveError with the status of the
// lowest failing rank's failure; that rank reports its message, the others stay silent.
void raise_if_any_failed(MPI_Comm comm, const std::exception_ptr& failure);

}  // namespace est
