// LD_PRELOADed by test_faults.py so that a SIGKILL lands inside a trace append by construction, not by timing. The
// KILL_DURING_WRITE_AT-th pwrite (HDF5's sec2 driver writes with nothing else) to trace.h5 writes half its buffer and
// the process kills itself: the worst a kill can leave, as one arriving between the pages of a write does. With
// KILL_DURING_WRITE_LOG set, every rename appends "<trace writes so far> <new path>" there, from which the test
// learns which writes belong to the flushes after a checkpoint.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long trace_writes;

static int is_trace(int fd) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, target, sizeof target);
  static const char name[] = "/trace.h5";
  return n >= (ssize_t)strlen(name) && memcmp(target + n - strlen(name), name, strlen(name)) == 0;
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (!real) real = (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  const char* at = getenv("KILL_DURING_WRITE_AT");
  if (!is_trace(fd) || ++trace_writes != (at ? atol(at) : 0)) return real(fd, buf, count, offset);
  real(fd, buf, count / 2, offset);
  fprintf(stderr, "kill_during_write: write %ld to trace.h5 torn: %zu of %zu bytes at offset %lld\n", trace_writes,
          count / 2, count, (long long)offset);
  raise(SIGKILL);
  return -1;
}

int rename(const char* from, const char* to) {
  static int (*real)(const char*, const char*);
  if (!real) real = (int (*)(const char*, const char*))dlsym(RTLD_NEXT, "rename");
  const char* log = getenv("KILL_DURING_WRITE_LOG");
  if (log) {
    FILE* f = fopen(log, "a");
    if (f) {
      fprintf(f, "%ld %s\n", trace_writes, to);
      fclose(f);
    }
  }
  return real(from, to);
}
