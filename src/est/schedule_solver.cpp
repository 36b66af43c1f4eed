#include "est/schedule_solver.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "train/flops_report.hpp"

namespace est {

namespace {

constexpr int kGrid = 1000;  // `until` is written with 3 decimals

double grid_value(int i) { return i / double(kGrid); }

__attribute__((format(printf, 1, 2))) std::string printed(const char* format, ...) {
  va_list args, again;
  va_start(args, format);
  va_copy(again, args);
  const int n = std::max(std::vsnprintf(nullptr, 0, format, args), 0);
  va_end(args);
  std::string s(size_t(n) + 1, '\0');
  std::vsnprintf(s.data(), s.size(), format, again);
  va_end(again);
  s.resize(size_t(n));
  return s;
}

// The shortest decimal that reads back as X: the file then holds exactly the rates the saving was solved with.
std::string shortest(double x) {
  std::string s;
  for (int digits = 1; digits <= 17; ++digits) {
    s = printed("%.*g", digits, x);
    if (std::strtod(s.c_str(), nullptr) == x) break;
  }
  return s;
}

void require(bool ok, const char* flag, const std::string& message) {
  if (!ok) throw InputError("", flag, message);
}

// The checks that need no config. Written as ok-conditions so that NaN fails them.
void check_request(const ScheduleSolveRequest& r) {
  require(r.saving > 0 && r.saving < 1, "--saving",
          "must be in (0, 1) (a fraction of the training FLOPs), got " + shortest(r.saving));
  const std::pair<const char*, double> rates[] = {
      {"--p-heads", r.p_heads}, {"--p-mlp", r.p_mlp}, {"--p-layers", r.p_layers}};
  for (const auto& [flag, p] : rates)
    require(p > 0 && p <= 1, flag, std::string("must be in (0, 1], got ") + shortest(p));
  require(r.stage1 > 0 && r.stage1 < 1, "--stage1",
          "must be in (0, 1) (where stage 1 ends, a fraction of the run), got " + shortest(r.stage1));
  const long long i1 = std::llround(r.stage1 * kGrid);
  require(i1 >= 1 && i1 <= kGrid - 2, "--stage1",
          shortest(r.stage1) + " is " + printed("%.3f", grid_value(int(i1))) +
              " at the 3 decimals of `until`, which leaves no room for stage 2 and stage 3");
}

// The three-stage schedules of one request and config that differ only in where stage 2 ends (grid point i2),
// and what `est flops` counts for each.
class Candidates {
 public:
  Candidates(const ScheduleSolveRequest& r, const Config& cfg)
      : r_(r), cfg_(cfg), i1_(int(std::llround(r.stage1 * kGrid))), path_("schedule solved for " + cfg.path) {}

  Schedule at(int i2) const {
    StageSpec s1;
    s1.until = grid_value(i1_);
    s1.p_heads = r_.p_heads;
    s1.p_mlp = r_.p_mlp;
    s1.p_layers = r_.p_layers;
    StageSpec s2 = s1;
    s2.until = grid_value(i2);
    s2.p_layers = 1;
    return Schedule{path_, {s1, s2, StageSpec{}}};
  }
  double saving(int i2) const { return schedule_flops_for(cfg_, at(i2)).saving(); }
  // Where a stage ending at grid point I ends, in whole steps, as Schedule::stage_end rounds it.
  int64_t end_step(int i) const { return Schedule{"", {StageSpec{grid_value(i)}}}.stage_end(0, steps()); }
  void check(const Schedule& s) const { check_schedule(s, cfg_.shape(), steps(), cfg_.parallel.tp, cfg_.head_unit()); }

  int i1() const { return i1_; }
  int64_t steps() const { return cfg_.train.steps; }

 private:
  const ScheduleSolveRequest& r_;
  const Config& cfg_;
  int i1_;
  std::string path_;
};

// The grid points where stage 2 has at least one step and stage 3 keeps at least one: [lo, hi].
std::pair<int, int> stage2_range(const Candidates& c) {
  const int64_t e1 = c.end_step(c.i1());
  const std::string run = "train.steps = " + std::to_string(c.steps());
  require(e1 >= 1, "--stage1",
          printed("%.3f", grid_value(c.i1())) + " of " + run +
              " rounds to step 0, leaving stage 1 empty; raise --stage1 or train.steps");
  int lo = c.i1() + 1, hi = kGrid - 1;
  while (lo < kGrid && c.end_step(lo) <= e1) ++lo;
  while (hi > c.i1() && c.end_step(hi) >= c.steps()) --hi;
  require(lo <= hi, "--stage1",
          "stage 1 ends at step " + std::to_string(e1) + " of " + run +
              ", leaving no room for a stage 2 step and a full-model step; lower --stage1 or raise train.steps");
  return {lo, hi};
}

void check_reachable(const ScheduleSolveRequest& r, const Candidates& c, int hi) {
  const std::string f1 = printed("%.3f", grid_value(c.i1()));
  const double least = c.saving(c.i1());  // stage 2 empty
  require(r.saving >= least, "--saving",
          shortest(r.saving) + " is less than stage 1 alone saves with --stage1 " + f1 + " and these rates: at least " +
              printed("%.5f", least) + "; give a smaller --stage1");
  const double most = c.saving(hi);
  require(r.saving <= most, "--saving",
          shortest(r.saving) + " is more than these rates allow with --stage1 " + f1 + ": at most " +
              printed("%.5f", most) + " (stage 2 until " + printed("%.3f", grid_value(hi)) + ", leaving " +
              std::to_string(c.steps() - c.end_step(hi)) +
              " step(s) on the full model); lower --p-heads, --p-mlp or --p-layers, or raise --stage1");
}

// The saving grows with f2 (stage 2 steps replace full-model ones), so bisect for the first grid point at or
// above the target and take it or the one before, whichever is nearer.
int nearest_f2(double target, const Candidates& c, int lo, int hi) {
  int a = lo, b = hi;
  while (a < b) {
    const int mid = (a + b) / 2;
    if (c.saving(mid) >= target)
      b = mid;
    else
      a = mid + 1;
  }
  if (a > lo && target - c.saving(a - 1) < c.saving(a) - target) --a;
  // Below 1000 steps several grid points end stage 2 at the same step; the one nearest that step's own
  // fraction reads best (and counts the same).
  const int64_t e2 = c.end_step(a);
  const int snapped = int(std::llround(double(e2) * kGrid / double(c.steps())));
  return c.end_step(snapped) == e2 ? snapped : a;
}

// ARG as a POSIX shell reads it back.
std::string quoted(const std::string& arg) {
  const char* plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,/:@%";
  if (!arg.empty() && arg.find_first_not_of(plain) == std::string::npos) return arg;
  std::string q = "'";
  for (const char ch : arg) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

std::string command_line(const ScheduleSolveRequest& r) {
  std::string c = "est schedule solve --config " + quoted(r.config_path) + " --saving " + shortest(r.saving);
  for (const std::string& o : r.overrides) c += " --set " + quoted(o);
  c += " --p-heads " + shortest(r.p_heads) + " --p-mlp " + shortest(r.p_mlp) + " --p-layers " + shortest(r.p_layers) +
       " --stage1 " + shortest(r.stage1);
  return r.out.empty() ? c : c + " --out " + quoted(r.out);
}

// The `est flops` command that counts the saving of the schedule written to FILE.
std::string flops_command(const ScheduleSolveRequest& r) {
  std::string c = "est flops --config " + quoted(r.config_path);
  for (const std::string& o : r.overrides) c += " --set " + quoted(o);
  return c + " --set est.schedule=FILE";
}

// The heads of a sampled layer in the units they are drawn in.
std::string heads_text(const ModelShape& shape, HeadUnit unit, const StageFlops& f) {
  const HeadUnits units = head_units(shape, unit);
  if (units.size > 1)
    return printed("%d of %d KV groups (%d of %d query heads)", f.heads / units.size, units.count, f.heads,
                   shape.n_head);
  if (shape.kv_heads() != shape.n_head)
    return printed("%d of %d query heads (reading %.2f of %d KV heads, expected)", f.heads, shape.n_head, f.kv_heads,
                   shape.kv_heads());
  return printed("%d of %d heads", f.heads, shape.n_head);
}

std::string stage_yaml(const StageSpec& s, int decimals) {
  return printed("  - until: %.*f\n    p_heads: ", decimals, s.until) + shortest(s.p_heads) +
         "\n    p_mlp: " + shortest(s.p_mlp) + "\n    p_layers: " + shortest(s.p_layers) + "\n";
}

// What the schedule was solved for: the config's shape and run, the draws, the rates and the sets they give.
std::string config_lines(const SolvedSchedule& s) {
  const Config& cfg = s.config;
  const ModelShape shape = cfg.shape();
  const ScheduleSolveRequest& r = s.request;
  const StageFlops& st1 = s.flops.stages[0];
  return printed("# Config: %s, T = %d, %d sequences per step, %d steps;\n", describe(shape).c_str(), cfg.model.seq_len,
                 cfg.train.batch_size, cfg.train.steps) +
         printed("# head draws: est.head_unit %s over %d strata.\n", cfg.est.head_unit.c_str(), cfg.est_strata()) +
         "# Rates: p_heads " + shortest(r.p_heads) + ", p_mlp " + shortest(r.p_mlp) + ", p_layers " +
         shortest(r.p_layers) + ".\n" +
         printed("# Realised sets (k = round(p * N)): %d of %d layers, ", count_for(r.p_layers, shape.n_layer),
                 shape.n_layer) +
         heads_text(shape, cfg.head_unit(), st1) + printed(", %d of %d MLP neurons.\n", st1.neurons, shape.neurons());
}

// How f2 was solved and what the schedule saves.
std::string solution_lines(const SolvedSchedule& s) {
  const std::vector<StageFlops>& st = s.flops.stages;
  const long long steps = s.config.train.steps, e2 = st[1].end_step;
  return printed("# Stage FLOPs ratios (causal convention, padded vocabulary %d): r1 = %.4f, r2 = %.4f, r3 = 1.\n",
                 s.config.shape().padded_vocab_size, st[0].ratio(), st[1].ratio()) +
         printed(
             "# f1 = %.3f (given); f2 = %.3f solved (est-method.md §6) so that, with the stage ends at whole\n"
             "# steps (%lld and %lld of %lld), S = f1 (1 - r1) + (f2 - f1) (1 - r2) is %s as nearly as a 0.001\n"
             "# boundary allows, leaving the last %.1f%% of the run on the full model.\n",
             s.f1(), s.f2(), (long long)st[0].end_step, e2, steps, shortest(s.request.saving).c_str(),
             100.0 * double(steps - e2) / double(steps)) +
         printed("# saving: %.5f (%.1f%%), as `", s.flops.saving(), 100 * s.flops.saving()) + flops_command(s.request) +
         "` counts it.\n";
}

void check_close(const SolvedSchedule& s) {
  const double off = std::abs(s.flops.saving() - s.request.saving);
  require(off <= kSavingTolerance, "--saving",
          printed("the nearest the %d steps of train.steps allow is %.5f (stage 2 until %.3f), %.4f from ",
                  s.config.train.steps, s.flops.saving(), s.f2(), off) +
              shortest(s.request.saving) + ": whole steps are too coarse; raise train.steps");
}

}  // namespace

SolvedSchedule solve_schedule(const ScheduleSolveRequest& request) {
  check_request(request);
  SolvedSchedule solved{request, load_config(request.config_path, request.overrides), {}, {}};
  const Candidates c(request, solved.config);
  const auto [lo, hi] = stage2_range(c);
  c.check(c.at(lo));  // sets that round to nothing, or too few for the tensor-parallel ranks
  check_reachable(request, c, hi);
  solved.schedule = c.at(nearest_f2(request.saving, c, lo, hi));
  solved.flops = schedule_flops_for(solved.config, solved.schedule);
  check_close(solved);
  return solved;
}

std::string format_solved_schedule(const SolvedSchedule& s) {
  const std::vector<StageSpec>& st = s.schedule.stages;
  return "# EST's three-stage schedule (est-method.md §3), solved by `est schedule solve` for " + s.config.path +
         ":\n"
         "#   stage 1, until f1: sampled layers, and sampled heads and MLP neurons in each active layer;\n"
         "#   stage 2, until f2: all layers, sampled heads and MLP neurons;\n"
         "#   stage 3, to the end: the full model.\n" +
         config_lines(s) + solution_lines(s) + "# command: " + command_line(s.request) + "\nstages:\n" +
         stage_yaml(st[0], 3) + stage_yaml(st[1], 3) + stage_yaml(st[2], 1);
}

double write_solved_schedule(const SolvedSchedule& solved, const std::string& path) {
  write_text_atomic(path, format_solved_schedule(solved));
  Config cfg = solved.config;
  cfg.est.schedule = path;
  const double saving = flops_report(cfg)["saving"].get<double>();
  if (saving != solved.flops.saving())
    throw std::logic_error(path + ": read back, the schedule saves " + shortest(saving) + ", not the " +
                           shortest(solved.flops.saving()) + " it was solved for");
  return saving;
}

}  // namespace est
