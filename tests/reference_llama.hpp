#pragma once
// A naive double-precision Llama with free attention and MLP widths per layer: the reference est's Llama must
// equal, and the "explicitly extracted dense smaller model" a subnetwork must equal, with EST's scales folded
// into its weights. Deliberately shares no code with est's kernels. Like est, it keeps the output projections
// input-major: attprojw (q_heads*hs, C), downw (neurons, C); every other matrix is (out, in). Query head h reads
// key/value head kv_of[h]; RoPE pairs element i of a head with element i + hs/2 (rotate-half).
#include <cmath>
#include <vector>

namespace est::test {

struct RefLlamaLayer {
  bool active = true;
  int q_heads = 0, kv_heads = 0, neurons = 0;
  std::vector<int> kv_of;
  // qkvw: q rows (q_heads*hs), then k and v rows (kv_heads*hs each); gateupw: gate rows, then up rows.
  std::vector<double> rms1w, qkvw, attprojw, rms2w, gateupw, downw;
};

struct RefLlama {
  int C = 0, hs = 0, V = 0, Vp = 0;
  double eps = 1e-5, theta = 10000;
  std::vector<double> wte, rmsfw, lmhead;  // lmhead empty: tied to wte
  std::vector<RefLlamaLayer> layers;

  // (B*T, V) logits of the real vocabulary.
  std::vector<double> logits(const std::vector<int>& tokens, int B, int T) const {
    const int N = B * T;
    std::vector<double> x(size_t(N) * C);
    for (int i = 0; i < N; ++i)
      for (int c = 0; c < C; ++c) x[i * C + c] = wte[tokens[i] * C + c];
    for (const RefLlamaLayer& l : layers) {
      if (!l.active) continue;
      add(x, attention(rmsnorm(x, l.rms1w), l, B, T));
      add(x, mlp(rmsnorm(x, l.rms2w), l));
    }
    const auto h = rmsnorm(x, rmsfw);
    const std::vector<double>& head = lmhead.empty() ? wte : lmhead;
    std::vector<double> out(size_t(N) * V);
    for (int i = 0; i < N; ++i)
      for (int v = 0; v < V; ++v) {
        double s = 0;
        for (int c = 0; c < C; ++c) s += h[i * C + c] * head[v * C + c];
        out[i * V + v] = s;
      }
    return out;
  }

  double loss(const std::vector<int>& tokens, const std::vector<int>& targets, int B, int T) const {
    const auto z = logits(tokens, B, T);
    double total = 0;
    for (int i = 0; i < B * T; ++i) {
      double mx = -1e300, sum = 0;
      for (int v = 0; v < V; ++v) mx = std::max(mx, z[i * V + v]);
      for (int v = 0; v < V; ++v) sum += std::exp(z[i * V + v] - mx);
      total += std::log(sum) + mx - z[i * V + targets[i]];
    }
    return total / (B * T);
  }

 private:
  std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<double>& w) const {
    std::vector<double> out(x.size());
    for (size_t i = 0; i < x.size() / C; ++i) {
      double ms = 0;
      for (int c = 0; c < C; ++c) ms += x[i * C + c] * x[i * C + c] / C;
      for (int c = 0; c < C; ++c) out[i * C + c] = x[i * C + c] / std::sqrt(ms + eps) * w[c];
    }
    return out;
  }
  // Rotates the head at column `col` of one row, at position t.
  void rope(double* row, int col, int t) const {
    for (int i = 0; i < hs / 2; ++i) {
      const double a = t * std::pow(theta, -2.0 * i / hs), c = std::cos(a), s = std::sin(a);
      const double u = row[col + i], v = row[col + i + hs / 2];
      row[col + i] = u * c - v * s;
      row[col + i + hs / 2] = v * c + u * s;
    }
  }
  std::vector<double> attention(const std::vector<double>& h, const RefLlamaLayer& l, int B, int T) const {
    const int Q = l.q_heads * hs, K = l.kv_heads * hs, W = Q + 2 * K, N = B * T;
    auto qkv = linear(h, l.qkvw, C, W);
    for (int i = 0; i < N; ++i)
      for (int hd = 0; hd < l.q_heads + l.kv_heads; ++hd) rope(qkv.data() + size_t(i) * W, hd * hs, i % T);
    std::vector<double> y(size_t(N) * Q, 0.0);
    for (int b = 0; b < B; ++b)
      for (int hd = 0; hd < l.q_heads; ++hd) {
        const int k0 = Q + l.kv_of[hd] * hs, v0 = Q + K + l.kv_of[hd] * hs;
        for (int t = 0; t < T; ++t) {
          std::vector<double> p(t + 1);
          double mx = -1e300, sum = 0;
          for (int j = 0; j <= t; ++j) {
            double s = 0;
            for (int d = 0; d < hs; ++d) s += qkv[(b * T + t) * W + hd * hs + d] * qkv[(b * T + j) * W + k0 + d];
            mx = std::max(mx, p[j] = s / std::sqrt(double(hs)));
          }
          for (int j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
          for (int d = 0; d < hs; ++d) {
            double s = 0;
            for (int j = 0; j <= t; ++j) s += p[j] / sum * qkv[(b * T + j) * W + v0 + d];
            y[(b * T + t) * Q + hd * hs + d] = s;
          }
        }
      }
    return linear(y, l.attprojw, Q, C, true);
  }
  std::vector<double> mlp(const std::vector<double>& h, const RefLlamaLayer& l) const {
    const int M = l.neurons;
    const auto gu = linear(h, l.gateupw, C, 2 * M);
    std::vector<double> a(h.size() / C * M);
    for (size_t i = 0; i < a.size() / M; ++i)
      for (int j = 0; j < M; ++j) {
        const double g = gu[i * 2 * M + j], u = gu[i * 2 * M + M + j];
        a[i * M + j] = g / (1 + std::exp(-g)) * u;
      }
    return linear(a, l.downw, M, C, true);
  }
  // (N, in) · W, with W stored (out, in) or, `in_major`, (in, out).
  static std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& W, int in, int out,
                                    bool in_major = false) {
    const size_t N = x.size() / in;
    std::vector<double> y(N * out);
    for (size_t i = 0; i < N; ++i)
      for (int o = 0; o < out; ++o) {
        double s = 0;
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
