#pragma once
// Running a study's points on this machine, one after the other: each is `est train --resume auto` in a child
// process with its log in DIR/<point>.log, so an interrupted study, run again, resumes its point from the last
// checkpoint and skips the points already done.
//
// SIGINT, SIGTERM and SIGUSR1 to the runner ask the running point to checkpoint and stop (SIGTERM); the study
// then stops with kExitResumable. A runner killed outright takes its point down the same way (the child asks
// for SIGTERM when its parent dies).
#include <cstdio>
#include <string>

namespace est {

struct StudyOutcome {
  size_t done = 0, failed = 0, skipped = 0;  // skipped: done before this invocation
  bool interrupted = false;
};

// Runs the points of the study in DIR (written by open_study) that are not done with EST_BINARY (this est: a
// study resumed after a rebuild runs the new one); OUT gets one line per point.
StudyOutcome run_study_locally(const std::string& dir, const std::string& est_binary, std::FILE* out);

}  // namespace est
