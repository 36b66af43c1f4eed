#pragma once
// How a command's failure becomes one error line and an exit status, agreed on by every MPI rank.
//
// Under MPI every rank runs the same command. Errors while setting up (config, data, model file) are agreed on:
// the lowest failing rank reports and every rank exits with its status. An error once training runs (the
// others may be waiting in a collective) aborts the whole job, so it ends instead of hanging.
#include <functional>
#include <string>

namespace est::cli {

constexpr int kExitBadInput = 2;

int world_rank();
int world_size();

// "est: error: MESSAGE" on stderr.
void report(const std::string& message);

// Every rank runs f; if any fails, the lowest failing rank reports and all return its status.
int agreed(const std::function<void()>& f);

// f may fail on one rank while the others wait in a collective: then the whole job ends. A diverged run fails on
// every rank at once, so it is reported once and ends without an abort.
int or_abort(const std::function<void()>& f);

}  // namespace est::cli
