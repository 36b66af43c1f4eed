#include "parallel/load_balancer.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace est {

namespace {

constexpr double kStateVersion = 1;
constexpr size_t kStateHeader = 8;  // version, dp, tp, global batch, over counter, replans, imbalance, window

// Shares of `total` in proportion to `w` (all > 0), each within [lo, hi] (lo * n <= total <= hi * n).
//
// Real quotas first: q_r = clamp(lambda * w_r, lo, hi) with lambda chosen so that they sum to total (the sum is
// continuous and nondecreasing in lambda, linear between the breakpoints lo / w_r and hi / w_r, so the segment
// holding total tells which shares sit at a bound, and the others split the rest in proportion to w). Clamping
// every share that the plain proportion would push past a bound at once is wrong when both bounds bind, hence
// the segment search. Then integers by largest remainder (ties to the lower rank): floors, plus one for the
// largest fractional parts until the sum is total.
std::vector<int64_t> bounded_proportional(const std::vector<double>& w, int64_t total, int64_t lo, int64_t hi) {
  const size_t n = w.size();
  if (lo * static_cast<int64_t>(n) == total) return std::vector<int64_t>(n, lo);
  if (hi * static_cast<int64_t>(n) == total) return std::vector<int64_t>(n, hi);
  const double dlo = static_cast<double>(lo), dhi = static_cast<double>(hi), dtotal = static_cast<double>(total);

  auto sum_at = [&](double lambda) {
    double s = 0;
    for (size_t r = 0; r < n; ++r) s += std::clamp(lambda * w[r], dlo, dhi);
    return s;
  };
  std::vector<double> breaks;
  breaks.reserve(2 * n);
  for (size_t r = 0; r < n; ++r) {
    breaks.push_back(dlo / w[r]);
    breaks.push_back(dhi / w[r]);
  }
  std::sort(breaks.begin(), breaks.end());
  breaks.erase(std::unique(breaks.begin(), breaks.end()), breaks.end());
  double prev = 0, next = breaks.back();
  for (double b : breaks) {
    if (b <= prev) continue;
    if (sum_at(b) >= dtotal) {
      next = b;
      break;
    }
    prev = b;
  }
  // Inside the segment no share sits exactly on a breakpoint, so the midpoint tells the bound ones apart.
  const double mid = 0.5 * (prev + next);
  std::vector<double> q(n);
  std::vector<char> free(n, 0);
  double fixed = 0, free_w = 0;
  for (size_t r = 0; r < n; ++r) {
    const double x = mid * w[r];
    if (x <= dlo) {
      q[r] = dlo;
    } else if (x >= dhi) {
      q[r] = dhi;
    } else {
      free[r] = 1;
      free_w += w[r];
      continue;
    }
    fixed += q[r];
  }
  for (size_t r = 0; r < n; ++r)
    if (free[r]) q[r] = std::clamp((dtotal - fixed) * w[r] / free_w, dlo, dhi);

  std::vector<int64_t> s(n);
  int64_t left = total;
  for (size_t r = 0; r < n; ++r) {
    s[r] = std::clamp(static_cast<int64_t>(std::floor(q[r])), lo, hi);
    left -= s[r];
  }
  // Largest remainder; the loops only guard against rounding of the quotas (left is in [0, n) in exact
  // arithmetic, and only shares below the cap have a remainder).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return q[a] - std::floor(q[a]) > q[b] - std::floor(q[b]);
  });
  while (left > 0) {
    for (size_t r : order)
      if (left > 0 && s[r] < hi) ++s[r], --left;
  }
  while (left < 0) {
    for (auto it = order.rbegin(); it != order.rend(); ++it)
      if (left < 0 && s[*it] > lo) --s[*it], ++left;
  }
  return s;
}

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("LoadBalancer: " + what); }

}  // namespace

LoadBalancer::LoadBalancer(int dp, int tp, int64_t global_batch, const BalancerConfig& cfg)
    : dp_(dp), tp_(tp), global_batch_(global_batch), cfg_(cfg) {
  if (dp < 1 || tp < 1) bad("dp and tp must be >= 1");
  if (global_batch < 1) bad("global batch must be >= 1");
  if (cfg.patience < 1) bad("patience must be >= 1");
  if (!(cfg.threshold >= 1)) bad("threshold must be >= 1");
  if (cfg.max_share < 0) bad("max_share must be >= 0");
  if (cfg.max_share > 0 && cfg.max_share * dp < global_batch)
    bad("max_share " + std::to_string(cfg.max_share) + " x " + std::to_string(dp) +
        " DP ranks cannot hold the global batch of " + std::to_string(global_batch));
  lo_ = global_batch >= dp ? 1 : 0;
  hi_ = cfg.max_share > 0 ? std::min(cfg.max_share, global_batch) : global_batch;
  // Equal split, the first ranks taking the remainder; ceil(global / dp) fits under the cap checked above.
  shares_.assign(dp, global_batch / dp);
  for (int r = 0; r < global_batch % dp; ++r) ++shares_[r];
  prefix_.assign(dp + 1, 0);
  std::partial_sum(shares_.begin(), shares_.end(), prefix_.begin() + 1);
  priority_.resize(tp);
  std::iota(priority_.begin(), priority_.end(), 0);
  throughput_.assign(dp, 0.0);
}

int64_t LoadBalancer::first_sequence(int dp_rank) const {
  if (dp_rank < 0 || dp_rank > dp_) throw std::out_of_range("LoadBalancer::first_sequence: bad DP rank");
  return prefix_[dp_rank];
}

bool LoadBalancer::observe(const std::vector<RankTiming>& timings, bool stage_changed) {
  if (timings.size() != static_cast<size_t>(dp_) * tp_)
    bad("observe: " + std::to_string(timings.size()) + " timings for " + std::to_string(dp_ * tp_) + " ranks");
  double max_c = 0, sum_c = 0;
  for (const RankTiming& t : timings) {
    if (!(t.compute >= 0) || !std::isfinite(t.compute) || !(t.work >= 0) || !std::isfinite(t.work))
      bad("observe: compute and work must be finite and >= 0");
    max_c = std::max(max_c, t.compute);
    sum_c += t.compute;
  }
  if (max_c > 0) {
    imbalance_ = max_c / (sum_c / static_cast<double>(timings.size()));
    // The replicas' TP ranks work in lockstep, so a replica's step takes as long as its slowest TP rank.
    std::vector<double> sample(2 * dp_ + 2 * tp_, 0.0);
    for (int r = 0; r < dp_; ++r) {
      sample[r] = static_cast<double>(shares_[r]);
      for (int t = 0; t < tp_; ++t) {
        const RankTiming& x = timings[static_cast<size_t>(r) * tp_ + t];
        sample[dp_ + r] = std::max(sample[dp_ + r], x.compute);
        sample[2 * dp_ + t] += x.compute;
        sample[2 * dp_ + tp_ + t] += x.work;
      }
    }
    window_.push_back(std::move(sample));
    while (window_.size() > static_cast<size_t>(cfg_.patience)) window_.pop_front();
    over_ = imbalance_ > cfg_.threshold ? over_ + 1 : 0;
  }
  // A persistent imbalance re-plans only from a full window of steps measured under the current plan (the
  // window is emptied at every re-plan), so one noisy step cannot move the plan. A stage transition re-plans
  // from whatever was measured: the costs are about to change anyway, and the next window measures them.
  if (stage_changed) return replan();
  if (over_ >= cfg_.patience && window_.size() >= static_cast<size_t>(cfg_.patience)) return replan();
  return false;
}

bool LoadBalancer::replan() {
  if (window_.empty()) return false;  // nothing measured since the last plan: keep it
  // Throughput of a replica: sequences over seconds summed over the window (the ratio of sums), which weighs
  // each step by its length so that one short outlier step does not dominate as it would in a mean of ratios;
  // and a window restarted at every re-plan, unlike an EMA, never mixes in steps measured under an older plan
  // or stage. A replica without a measurement (share 0, or no time) keeps its last estimate.
  for (int r = 0; r < dp_; ++r) {
    double seq = 0, sec = 0;
    for (const auto& s : window_) {
      seq += s[r];
      sec += s[dp_ + r];
    }
    if (seq > 0 && sec > 0) throughput_[r] = seq / sec;
  }
  double known = 0;
  int n_known = 0;
  for (double x : throughput_)
    if (x > 0) known += x, ++n_known;
  if (n_known > 0) {
    // Replicas never measured are assumed to be as fast as the mean of the others.
    std::vector<double> w(throughput_);
    for (double& x : w)
      if (!(x > 0)) x = known / n_known;
    shares_ = plan_shares(w);
    std::partial_sum(shares_.begin(), shares_.end(), prefix_.begin() + 1);
  }

  // TP ranks by their compute summed over replicas and the window (the mean up to a common factor), per unit of
  // work when every rank reported its work; stable, so ties keep rank order.
  std::vector<double> c(tp_, 0.0), u(tp_, 0.0);
  for (const auto& s : window_)
    for (int t = 0; t < tp_; ++t) {
      c[t] += s[2 * dp_ + t];
      u[t] += s[2 * dp_ + tp_ + t];
    }
  const bool per_unit = std::all_of(u.begin(), u.end(), [](double x) { return x > 0; });
  std::vector<double> key(tp_);
  for (int t = 0; t < tp_; ++t) key[t] = per_unit ? c[t] / u[t] : c[t];
  std::iota(priority_.begin(), priority_.end(), 0);
  std::stable_sort(priority_.begin(), priority_.end(), [&](int a, int b) { return key[a] < key[b]; });

  window_.clear();
  over_ = 0;
  ++replans_;
  return true;
}

std::vector<int64_t> LoadBalancer::plan_shares(const std::vector<double>& weights) const {
  return bounded_proportional(weights, global_batch_, lo_, hi_);
}

std::vector<double> LoadBalancer::state() const {
  std::vector<double> s{kStateVersion,
                        static_cast<double>(dp_),
                        static_cast<double>(tp_),
                        static_cast<double>(global_batch_),
                        static_cast<double>(over_),
                        static_cast<double>(replans_),
                        imbalance_,
                        static_cast<double>(window_.size())};
  for (int64_t x : shares_) s.push_back(static_cast<double>(x));
  for (int x : priority_) s.push_back(static_cast<double>(x));
  s.insert(s.end(), throughput_.begin(), throughput_.end());
  for (const auto& w : window_) s.insert(s.end(), w.begin(), w.end());
  return s;
}

void LoadBalancer::restore(const std::vector<double>& s) {
  const size_t per_sample = 2 * static_cast<size_t>(dp_) + 2 * static_cast<size_t>(tp_);
  if (s.size() < kStateHeader || s[0] != kStateVersion) bad("restore: not a balancer state (version 1)");
  if (s[1] != dp_ || s[2] != tp_ || s[3] != static_cast<double>(global_batch_))
    bad("restore: the state is for another dp, tp or global batch");
  const double n_window = s[7];
  if (!(n_window >= 0) || n_window != std::floor(n_window) ||
      s.size() != kStateHeader + 2 * static_cast<size_t>(dp_) + tp_ + static_cast<size_t>(n_window) * per_sample)
    bad("restore: truncated or malformed state");
  std::vector<int64_t> shares(dp_);
  std::vector<int> priority(tp_);
  size_t i = kStateHeader;
  for (int r = 0; r < dp_; ++r) shares[r] = static_cast<int64_t>(s[i++]);
  for (int t = 0; t < tp_; ++t) priority[t] = static_cast<int>(s[i++]);
  std::vector<int> seen(priority);
  std::sort(seen.begin(), seen.end());
  for (int t = 0; t < tp_; ++t)
    if (seen[t] != t) bad("restore: TP priority is not a permutation");
  if (std::accumulate(shares.begin(), shares.end(), int64_t{0}) != global_batch_)
    bad("restore: shares do not sum to the global batch");
  std::vector<double> throughput(s.begin() + static_cast<std::ptrdiff_t>(i),
                                 s.begin() + static_cast<std::ptrdiff_t>(i + dp_));
  i += dp_;
  std::deque<std::vector<double>> window;
  for (size_t k = 0; k < static_cast<size_t>(n_window); ++k, i += per_sample)
    window.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(i),
                        s.begin() + static_cast<std::ptrdiff_t>(i + per_sample));
  // A smaller patience than the saved run's keeps the newest samples.
  while (window.size() > static_cast<size_t>(cfg_.patience)) window.pop_front();

  shares_ = std::move(shares);
  priority_ = std::move(priority);
  throughput_ = std::move(throughput);
  window_ = std::move(window);
  over_ = static_cast<int>(s[4]);
  replans_ = static_cast<int>(s[5]);
  imbalance_ = s[6];
  // A cap lowered since the save: re-plan within it now, from the saved estimates (equal weights without any).
  if (std::any_of(shares_.begin(), shares_.end(), [&](int64_t x) { return x < lo_ || x > hi_; })) {
    std::vector<double> w(throughput_);
    double known = 0;
    int n_known = 0;
    for (double x : w)
      if (x > 0) known += x, ++n_known;
    for (double& x : w)
      if (!(x > 0)) x = n_known > 0 ? known / n_known : 1.0;
    shares_ = plan_shares(w);
    window_.clear();  // a re-plan: the window restarts
    over_ = 0;
  }
  std::partial_sum(shares_.begin(), shares_.end(), prefix_.begin() + 1);
}

}  // namespace est
