#pragma once
// A naive double-precision GPT-2 with free attention and MLP widths per layer: the "explicitly extracted dense
// smaller model" a subnetwork must equal, with EST's scales folded into its weights. Deliberately shares no
// code with est's kernels. Like est, it keeps the output projections input-major: attprojw (heads*hs, C),
// fcprojw (neurons, C); every other matrix is (out, in).
#include <cmath>
#include <vector>

namespace est::test {

struct RefLayer {
  bool active = true;
  int heads = 0, neurons = 0;  // attention width heads*hs, MLP width neurons
  std::vector<double> ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
};

struct RefModel {
  int C = 0, hs = 0, V = 0, Vp = 0;
  std::vector<double> wte, wpe, lnfw, lnfb;
  std::vector<RefLayer> layers;

  double loss(const std::vector<int>& tokens, const std::vector<int>& targets, int B, int T) const {
    const int N = B * T;
    std::vector<double> x(size_t(N) * C);
    for (int i = 0; i < N; ++i)
      for (int c = 0; c < C; ++c) x[i * C + c] = wte[tokens[i] * C + c] + wpe[(i % T) * C + c];
    for (const RefLayer& l : layers) {
      if (!l.active) continue;
      const int A = l.heads * hs, M = l.neurons;
      auto h = layernorm(x, l.ln1w, l.ln1b);
      auto qkv = linear(h, l.qkvw, l.qkvb, C, 3 * A);
      std::vector<double> y(size_t(N) * A, 0.0);
      for (int b = 0; b < B; ++b)
        for (int hd = 0; hd < l.heads; ++hd)
          for (int t = 0; t < T; ++t) {
            std::vector<double> p(t + 1);
            double mx = -1e300, sum = 0;
            for (int j = 0; j <= t; ++j) {
              double s = 0;
              for (int d = 0; d < hs; ++d)
                s += qkv[(b * T + t) * 3 * A + hd * hs + d] * qkv[(b * T + j) * 3 * A + A + hd * hs + d];
              p[j] = s / std::sqrt(double(hs));
              mx = std::max(mx, p[j]);
            }
            for (int j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
            for (int d = 0; d < hs; ++d) {
              double s = 0;
              for (int j = 0; j <= t; ++j) s += p[j] / sum * qkv[(b * T + j) * 3 * A + 2 * A + hd * hs + d];
              y[(b * T + t) * A + hd * hs + d] = s;
            }
          }
      add(x, linear(y, l.attprojw, l.attprojb, A, C, true));
      h = layernorm(x, l.ln2w, l.ln2b);
      auto f = linear(h, l.fcw, l.fcb, C, M);
      for (double& v : f) v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
      add(x, linear(f, l.fcprojw, l.fcprojb, M, C, true));
    }
    const auto h = layernorm(x, lnfw, lnfb);
    double total = 0;
    for (int i = 0; i < N; ++i) {
      std::vector<double> logit(V);
      double mx = -1e300, sum = 0;
      for (int v = 0; v < V; ++v) {
        double s = 0;
        for (int c = 0; c < C; ++c) s += h[i * C + c] * wte[v * C + c];
        mx = std::max(mx, logit[v] = s);
      }
      for (int v = 0; v < V; ++v) sum += std::exp(logit[v] - mx);
      total += std::log(sum) + mx - logit[targets[i]];
    }
    return total / N;
  }

 private:
  std::vector<double> layernorm(const std::vector<double>& x, const std::vector<double>& w,
                                const std::vector<double>& b) const {
    const size_t N = x.size() / C;
    std::vector<double> out(x.size());
    for (size_t i = 0; i < N; ++i) {
      double m = 0, v = 0;
      for (int c = 0; c < C; ++c) m += x[i * C + c] / C;
      for (int c = 0; c < C; ++c) v += (x[i * C + c] - m) * (x[i * C + c] - m) / C;
      for (int c = 0; c < C; ++c) out[i * C + c] = (x[i * C + c] - m) / std::sqrt(v + 1e-5) * w[c] + b[c];
    }
    return out;
  }
  // (N, in) · W + b, with W stored (out, in) or, `in_major`, (in, out).
  static std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& W,
                                    const std::vector<double>& b, int in, int out, bool in_major = false) {
    const size_t N = x.size() / in;
    std::vector<double> y(N * out);
    for (size_t i = 0; i < N; ++i)
      for (int o = 0; o < out; ++o) {
        double s = b[o];
        for (int k = 0; k < in; ++k) s += x[i * in + k] * (in_major ? W[k * out + o] : W[o * in + k]);
        y[i * out + o] = s;
      }
    return y;
  }
  static void add(std::vector<double>& x, const std::vector<double>& y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
};

}  // namespace est::test
