#include "sim/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <thread>

#include "config/config.hpp"
#include "input_error.hpp"
#include "io/hdf5_util.hpp"
#include "sim/cost_model.hpp"
#include "train/timing.hpp"

namespace est {
namespace {

// A dataset of the trace as doubles, row-major: rows x cols (cols 1 for a one-dimensional one).
struct Table {
  std::vector<double> values;
  size_t rows = 0, cols = 1;
  double at(size_t r, size_t c = 0) const { return values[r * cols + c]; }
};

// A trace's rows and the figures of its run that the fit needs.
struct Trace {
  std::string path;
  ModelShape shape;
  int T = 1, batch = 1, tp = 1, dp = 1, threads = 0;
  ReductionPlan reduction;
  Table stage, active_layers, active_heads, active_neurons, compute, comm, tp_bytes, dp_bytes;
  Table dp_reduce, dp_exposed;  // format 2; empty in earlier traces
};

H5Handle open_trace(const std::string& path) {
  H5Handle file = h5::open_for_reading(path);
  if (h5::read_string_attribute(file.get(), "est_kind", path).value_or("") != "trace")
    throw InputError(path, "est_kind", "not a trace");
  return file;
}

Table read_table(hid_t file, const char* name, const std::string& path) {
  const H5Handle d = h5::open_dataset(file, name, path);
  const std::string where = path + ": dataset " + name;
  H5Handle space(h5_check(H5Dget_space(d.get()), where + ": H5Dget_space"), H5Sclose);
  hsize_t dims[2] = {1, 1};
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > 2) throw InputError(path, name, "expected a one- or two-dimensional dataset");
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  Table t;
  t.rows = dims[0];
  t.cols = rank == 2 ? dims[1] : 1;
  t.values.resize(t.rows * t.cols);
  if (!t.values.empty())
    h5_check(H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.values.data()), where + ": H5Dread");
  return t;
}

int read_int(hid_t file, const char* name, const std::string& path) {
  const auto v = h5::read_int_attribute(file, name, path);
  if (!v) throw InputError(path, std::string("/@") + name, "missing attribute (needed for calibration)");
  return int(*v);
}

// The model shape, batch and compute threads per rank from the trace's effective configuration.
void read_run(Trace& t, hid_t file) {
  const auto text = h5::read_string_attribute(file, "config", t.path);
  if (!text) throw InputError(t.path, "/@config", "missing attribute (needed for calibration)");
  const Config cfg = parse_config(*text, t.path + ": /@config");
  t.shape = cfg.shape();
  t.T = cfg.model.seq_len;
  t.batch = cfg.train.batch_size;
  t.threads = cfg.runtime.threads;
  t.reduction = {cfg.parallel.bucket_mb * double(1 << 20), cfg.parallel.overlap};
}

Trace read_trace(const std::string& path) {
  Trace t;
  t.path = path;
  const H5Handle f = open_trace(path);
  const hid_t file = f.get();
  read_run(t, file);
  t.tp = read_int(file, "tp", path);
  t.dp = read_int(file, "dp", path);
  t.stage = read_table(file, "stage", path);
  t.active_layers = read_table(file, "active_layers", path);
  t.active_heads = read_table(file, "active_heads", path);
  t.active_neurons = read_table(file, "active_neurons", path);
  t.compute = read_table(file, "compute_seconds", path);
  t.comm = read_table(file, "comm_seconds", path);
  t.tp_bytes = read_table(file, "tp_bytes", path);
  t.dp_bytes = read_table(file, "dp_bytes", path);
  std::vector<const Table*> tables = {&t.active_layers, &t.active_heads, &t.active_neurons, &t.compute, &t.comm,
                                      &t.tp_bytes, &t.dp_bytes};
  if (read_int(file, "format_version", path) >= 2) {
    t.dp_reduce = read_table(file, "dp_reduce_seconds", path);
    t.dp_exposed = read_table(file, "dp_exposed_seconds", path);
    tables.insert(tables.end(), {&t.dp_reduce, &t.dp_exposed});
  } else {
    t.reduction = {0, false};  // one blocking sum of the whole gradient, before the buckets
  }
  for (const Table* d : tables)
    if (d->rows != t.stage.rows) throw InputError(path, "step", "datasets of different lengths");
  if (t.stage.rows == 0) throw InputError(path, "step", "no rows");
  return t;
}

double mean_over_ranks(const Table& t, size_t row) {
  double s = 0;
  for (size_t c = 0; c < t.cols; ++c) s += t.at(row, c);
  return s / double(t.cols);
}

double max_over_ranks(const Table& t, size_t row) {
  double m = 0;
  for (size_t c = 0; c < t.cols; ++c) m = std::max(m, t.at(row, c));
  return m;
}

// The mean rank's share of one row's step.
RankStep rank_step(const Trace& t, size_t row) {
  RankStep r;
  double heads = 0, neurons = 0;
  for (size_t l = 0; l < t.active_layers.cols; ++l) {
    r.active_layers += t.active_layers.at(row, l);
    heads += t.active_heads.at(row, l);
    neurons += t.active_neurons.at(row, l);
  }
  const double per_layer = std::max(r.active_layers, 1.0) * t.tp;
  r.heads = heads / per_layer;
  r.neurons = neurons / per_layer;
  r.sequences = double(t.batch) / t.dp;
  r.tp = t.tp;
  r.dp = t.dp;
  r.reduction = t.reduction;
  return r;
}

// Seconds a row's ranks spent in collectives, on average, counting the gradient sum whole (hidden or not).
double all_comm(const Trace& t, size_t row) {
  const double comm = mean_over_ranks(t.comm, row);
  return t.dp_reduce.rows ? comm - mean_over_ranks(t.dp_exposed, row) + mean_over_ranks(t.dp_reduce, row) : comm;
}

// One measured median and the terms the model multiplies by the unknowns.
struct Point {
  std::vector<double> terms;
  double seconds = 0;
};

// Least squares over `points` of the relative error, with every unknown >= 0: the best unconstrained solution
// over the subsets of unknowns (there are two or three). Columns are scaled first: FLOPs and calls differ by
// orders of magnitude. Empty when no subset can be solved.
std::vector<double> fit_nonnegative(const std::vector<Point>& points) {
  const size_t k = points.front().terms.size();
  std::vector<double> scale(k, 0.0);
  for (const Point& p : points)
    for (size_t j = 0; j < k; ++j) scale[j] = std::max(scale[j], std::abs(p.terms[j] / p.seconds));
  std::vector<double> best;
  double best_residual = INFINITY;
  for (unsigned subset = 1; subset < (1u << k); ++subset) {
    std::vector<size_t> cols;
    for (size_t j = 0; j < k; ++j)
      if (subset & (1u << j) && scale[j] > 0) cols.push_back(j);
    if (cols.size() != size_t(__builtin_popcount(subset)) || cols.size() > points.size()) continue;
    const size_t m = cols.size();
    // Normal equations [AᵀA | Aᵀb], rows divided by the measured seconds.
    std::vector<std::vector<double>> a(m, std::vector<double>(m + 1, 0.0));
    for (const Point& p : points)
      for (size_t i = 0; i < m; ++i) {
        const double xi = p.terms[cols[i]] / p.seconds / scale[cols[i]];
        for (size_t j = 0; j < m; ++j) a[i][j] += xi * p.terms[cols[j]] / p.seconds / scale[cols[j]];
        a[i][m] += xi;
      }
    bool solved = true;
    for (size_t c = 0; c < m && solved; ++c) {
      size_t pivot = c;
      for (size_t r = c + 1; r < m; ++r)
        if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
      if (std::abs(a[pivot][c]) < 1e-12) solved = false;
      std::swap(a[c], a[pivot]);
      for (size_t r = 0; r < m && solved; ++r) {
        if (r == c) continue;
        const double f = a[r][c] / a[c][c];
        for (size_t j = c; j <= m; ++j) a[r][j] -= f * a[c][j];
      }
    }
    if (!solved) continue;
    std::vector<double> x(k, 0.0);
    bool feasible = true;
    for (size_t i = 0; i < m; ++i) {
      x[cols[i]] = a[i][m] / a[i][i] / scale[cols[i]];
      feasible = feasible && x[cols[i]] >= 0;
    }
    if (!feasible) continue;
    double residual = 0;
    for (const Point& p : points) {
      double predicted = 0;
      for (size_t j = 0; j < k; ++j) predicted += x[j] * p.terms[j];
      residual += std::pow(predicted / p.seconds - 1, 2);
    }
    if (residual < best_residual) {
      best_residual = residual;
      best = x;
    }
  }
  return best;
}

double rms_error(const std::vector<Point>& points, const std::vector<double>& x) {
  double s = 0;
  for (const Point& p : points) {
    double predicted = 0;
    for (size_t j = 0; j < x.size(); ++j) predicted += x[j] * p.terms[j];
    s += std::pow(predicted / p.seconds - 1, 2);
  }
  return std::sqrt(s / double(points.size()));
}

// A (trace, stage) of an overlapped multi-replica run: its work and the measured medians (mean rank).
struct OverlapPoint {
  StepWork work;
  double compute = 0, reduce = 0, exposed = 0;
};

// Per point, of what the timeline of exposed_seconds would hide, the fraction the sums did hide, with the fitted
// machine's backward pass and bucket times scaled to the point's measured compute and sum; their median (NaN
// where no point tells).
double fit_overlap(const Cluster& c, const std::vector<OverlapPoint>& points) {
  std::vector<double> fractions;
  for (const OverlapPoint& p : points) {
    const StepCost predicted = step_cost(c, p.work);
    if (!(predicted.compute_seconds > 0) || !(predicted.dp_reduce_seconds > 0)) continue;
    const double k = p.compute / predicted.compute_seconds;
    const BackwardPass pass = backward_pass(c, p.work);
    std::vector<double> buckets = bucket_seconds(c, p.work);
    double sums = 0;
    for (const double b : buckets) sums += b;
    const double loss = predicted.dp_reduce_seconds - sums;  // the loss's all-reduce, never hidden
    if (!(sums > 0) || !(p.reduce > loss)) continue;
    for (double& b : buckets) b *= (p.reduce - loss) / sums;
    const double ideal = loss + exposed_seconds(p.work, buckets, k * pass.seconds, k * pass.head_seconds, 1.0);
    if (p.reduce - ideal <= 1e-3 * p.reduce) continue;  // the timeline hides nothing here
    fractions.push_back(std::clamp(1 - (p.exposed - ideal) / (p.reduce - ideal), 0.0, 1.0));
  }
  return fractions.empty() ? NAN : median(fractions);
}

// Ring coefficients of a group's calls and bytes: seconds = alpha·calls_term + beta·bytes_term.
void add_ring_terms(int p, double calls, double bytes, std::vector<double>& terms) {
  if (p <= 1) return;
  terms[0] += 2.0 * (p - 1) * calls;
  terms[1] += 2.0 * (p - 1) / p * bytes;
}

// What the fits take from the traces: per (trace, stage) medians, and every multi-rank row's compute imbalance.
struct Measured {
  std::vector<Point> compute, comm;
  std::vector<OverlapPoint> overlap;
  std::vector<double> imbalances;
};

// One (trace, stage)'s medians over its rows.
void measure_stage(const Trace& t, const std::vector<size_t>& rows, Measured& m) {
  std::vector<double> compute_s, comm_s, tp_bytes, dp_bytes, reduce_s, exposed_s;
  Point c{{0, 0, 0}, 0};
  double tp_calls = 0, dp_calls = 0;
  const double share = 1.0 / double(rows.size());  // of the stage's mean
  for (const size_t i : rows) {
    const StepWork w = step_work(t.shape, t.T, rank_step(t, i));
    c.terms[0] += share * w.gemm_flops();
    c.terms[1] += share * w.gemm_calls();
    c.terms[2] += share * w.elementwise_bytes;
    tp_calls += share * w.tp.calls;
    dp_calls += share * w.dp.calls;
    compute_s.push_back(mean_over_ranks(t.compute, i));
    comm_s.push_back(all_comm(t, i));
    tp_bytes.push_back(t.tp_bytes.at(i));
    dp_bytes.push_back(t.dp_bytes.at(i));
    if (t.compute.cols > 1) m.imbalances.push_back(max_over_ranks(t.compute, i) / mean_over_ranks(t.compute, i));
    if (t.dp_reduce.rows) {
      reduce_s.push_back(mean_over_ranks(t.dp_reduce, i));
      exposed_s.push_back(mean_over_ranks(t.dp_exposed, i));
    }
  }
  c.seconds = median(compute_s);
  if (c.seconds > 0) m.compute.push_back(c);
  // The bytes are the ones the trainer counted (rank 0's); the model only says how many calls carried them.
  Point n{{0, 0}, median(comm_s)};
  add_ring_terms(t.tp, tp_calls, median(tp_bytes), n.terms);
  add_ring_terms(t.dp, dp_calls, median(dp_bytes), n.terms);
  if (t.tp * t.dp > 1 && n.seconds > 0) m.comm.push_back(n);
  if (t.dp > 1 && t.reduction.overlap && !reduce_s.empty())
    m.overlap.push_back({step_work(t.shape, t.T, rank_step(t, rows[rows.size() / 2])), c.seconds, median(reduce_s),
                         median(exposed_s)});
}

}  // namespace

Calibration calibrate(const std::vector<std::string>& paths, const std::string& name) {
  if (paths.empty()) throw InputError("", "--calibrate", "no traces given");
  Calibration cal;
  Cluster& c = cal.cluster;
  // The traces ran on this machine, one node of it: its cores are the node's (unknown: not limiting).
  const unsigned cores = std::thread::hardware_concurrency();
  c.cores = cores > 0 ? double(cores) : INFINITY;
  Measured m;
  int most_ranks = 1;
  for (const std::string& path : paths) {
    const Trace t = read_trace(path);
    // On shared cores a rank waiting for a descheduled partner counts that as communication: the trace's compute
    // and communication seconds are not the model's terms (its step is, see step_cost).
    if (oversubscription(c, t.tp * t.dp, t.threads) > 1)
      throw InputError(path, "/@config: runtime.threads",
                       std::to_string(t.tp * t.dp) + " rank(s) x " + std::to_string(t.threads) +
                           " thread(s) (0: one per core) oversubscribe this machine's " + std::to_string(cores) +
                           " cores; calibrate on runs that fit them");
    most_ranks = std::max(most_ranks, t.tp * t.dp);
    cal.threads.insert(t.threads);
    std::map<int, std::vector<size_t>> rows_by_stage;
    // The first row of an invocation carries the warm-up (first-touch allocations, GEMM primitive creation).
    for (size_t i = 1; i < t.stage.rows; ++i) rows_by_stage[int(t.stage.at(i))].push_back(i);
    for (const auto& [stage, rows] : rows_by_stage) measure_stage(t, rows, m);
  }

  c.name = name;
  c.sources = {"measured: est training traces, fitted by est simulate --calibrate"};
  c.ranks_per_node = most_ranks;  // the traces ran on one node
  const std::vector<double> x = m.compute.size() >= 3 ? fit_nonnegative(m.compute) : std::vector<double>{};
  if (x.empty() || x[0] <= 0)
    throw InputError("", "--calibrate",
                     "the traces do not determine a GEMM rate: give runs whose tokens per step (batch_size x "
                     "seq_len) differ widely, e.g. 64 and 2048 (AdamW's traffic does not grow with them, the "
                     "GEMMs' work does)");
  c.peak_flops = 1 / x[0];
  c.gemm = {1.0, 0.0, x[1]};
  // Zero: the elementwise traffic is lost in the GEMM terms and the noise; infinite bandwidth says so.
  c.memory_bandwidth = x[2] > 0 ? 1 / x[2] : INFINITY;
  c.imbalance = m.imbalances.empty() ? 1.0 : std::max(1.0, median(m.imbalances));
  cal.compute_points = int(m.compute.size());
  cal.compute_rms_error = rms_error(m.compute, x);
  if (!m.comm.empty()) {
    const std::vector<double> ab = fit_nonnegative(m.comm);
    if (!ab.empty()) {
      c.intra = {ab[0], ab[1]};
      cal.comm_rms_error = rms_error(m.comm, ab);
    }
    cal.comm_points = int(m.comm.size());
  }
  // One machine: nothing to tell the links between nodes apart from those inside one.
  c.inter = c.intra;
  c.allreduce = AllreduceAlgorithm::ring;
  const double overlap = fit_overlap(c, m.overlap);
  cal.overlap_points = std::isnan(overlap) ? 0 : int(m.overlap.size());
  if (!std::isnan(overlap)) c.overlap_efficiency = overlap;
  c.description = "fitted to " + std::to_string(paths.size()) + " trace(s)";
  return cal;
}

std::string format_calibration(const Calibration& cal, const std::vector<std::string>& traces) {
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string header = "Calibrated by est simulate --calibrate at " + std::string(when) + " from:\n";
  for (const std::string& t : traces) header += "  " + t + "\n";
  char fit[240];
  std::snprintf(fit, sizeof fit,
                "Fit: %d compute medians (rms relative error %.3f), %d communication medians (rms %.3f).\n",
                cal.compute_points, cal.compute_rms_error, cal.comm_points, cal.comm_rms_error);
  header += fit;
  header +=
      "peak_flops is the fitted GEMM rate (peak x efficiency, so efficiency is 1); a fixed cost per GEMM and a\n"
      "saturation work are the same term to a linear fit, so it is all in launch_seconds and half_rate_flops is 0.\n"
      "network.inter repeats network.intra: the traces come from one node. power_watts is not measured (0).\n"
      "node.cores is this machine's std::thread::hardware_concurrency(), the traces' node.";
  std::string threads;
  for (const int n : cal.threads) threads += (threads.empty() ? "" : ", ") + std::to_string(n);
  header += "\nRates are a rank's at runtime.threads " + threads +
            " (the traces'; 0: one per core): simulate at the same. node.cores\n"
            "only slows ranks whose threads outnumber the cores; it does not speed up a rank given more threads.";
  if (std::isinf(cal.cluster.memory_bandwidth))
    header += "\nmemory_bandwidth .inf: the fit found no elementwise cost beyond the GEMM terms and the noise.";
  if (cal.comm_points == 0) header += "\nNo multi-rank traces: alpha and beta are 0 (not calibrated).";
  header += cal.overlap_points > 0
                ? "\noverlap_efficiency: the median over " + std::to_string(cal.overlap_points) +
                      " overlapped data-parallel (trace, stage) points of the gradient sum hidden over what the\n"
                      "model's timeline would hide."
                : "\noverlap_efficiency 1: no trace of an overlapped data-parallel run (not calibrated).";
  return format_cluster(cal.cluster, header);
}

}  // namespace est
