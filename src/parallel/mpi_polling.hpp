#pragma once
// Waiting for a non-blocking MPI operation without holding a core: Open MPI advances one only inside MPI calls,
// and its blocking waits spin, which on shared cores takes them from the ranks that still compute (a rank that
// waits for a slower partner would slow that partner down).
#include <mpi.h>

#include <atomic>

namespace est {

// Tests `request` back to back for the first 100 us (a short operation is done by then), then sleeps a sixteenth
// of the time waited so far between tests, from 10 us to 1 ms: the operation ends at most ~6% later than it
// could, and a long wait costs about a thousand wake-ups a second. While *hurry holds, no sleeps. Returns false,
// leaving the request pending, once *give_up holds.
bool poll_until_done(MPI_Request& request, const std::atomic<bool>* hurry = nullptr,
                     const std::atomic<bool>* give_up = nullptr);

}  // namespace est
