#include "encoder.hpp"
#include "test_util.hpp"

namespace est {
namespace {

TEST(Encoder, ForwardAndBackwardMatchNaive) {
  const int B = 3, T = 5, C = 7, V = 11, maxT = 8;
  std::vector<int> tok(B * T);
  for (int i = 0; i < B * T; ++i) tok[i] = (i * 7 + 3) % V;
  tok[4] = tok[9];  // a repeated token must accumulate
  auto wte = test::randn(V * C, 1), wpe = test::randn(maxT * C, 2), dout = test::randn(B * T * C, 3);
  auto dtok = test::to_device(tok);
  Buffer dwte_d = test::to_device(std::vector<float>(V * C, 0.5f)), dwpe_d = test::to_device(test::randn(maxT * C, 9));
  Buffer out = Buffer("out", B * T * C), wte_d = test::to_device(wte), wpe_d = test::to_device(wpe),
         dout_d = test::to_device(dout);

  encoder_forward(mat(out.data(), B * T, C), dtok, cmat(wte_d.data(), V, C), cmat(wpe_d.data(), maxT, C), T);
  std::vector<double> want(B * T * C), dwte(V * C, 0.5), dwpe(maxT * C, 0.0);
  for (int i = 0; i < B * T; ++i)
    for (int c = 0; c < C; ++c) {
      want[i * C + c] = double(wte[tok[i] * C + c]) + wpe[(i % T) * C + c];
      dwte[tok[i] * C + c] += dout[i * C + c];
      dwpe[(i % T) * C + c] += dout[i * C + c];
    }
  test::expect_close(test::to_host(out), want, 1e-6, 1e-6, "forward");

  encoder_backward(mat(dwte_d.data(), V, C), mat(dwpe_d.data(), maxT, C), cmat(dout_d.data(), B * T, C), dtok, T);
  test::expect_close(test::to_host(dwte_d), dwte, 1e-5, 1e-5, "dwte accumulates");
  test::expect_close(test::to_host(dwpe_d), dwpe, 1e-5, 1e-5, "dwpe overwritten, rows >= T zero");
}

// Llama's token embedding: no positions.
TEST(Encoder, EmbeddingForwardAndBackwardMatchNaive) {
  const int N = 9, C = 300, V = 6;  // C over one host strip of columns
  std::vector<int> tok(N);
  for (int i = 0; i < N; ++i) tok[i] = (i * 5 + 1) % V;
  tok[7] = tok[2];  // a repeated token must accumulate
  auto wte = test::randn(V * C, 1), dout = test::randn(N * C, 2), dwte0 = test::randn(V * C, 3);
  auto dtok = test::to_device(tok);
  Buffer out("out", N * C), wte_d = test::to_device(wte), dout_d = test::to_device(dout);
  Buffer dwte_d = test::to_device(dwte0);

  embedding_forward(mat(out.data(), N, C), dtok, cmat(wte_d.data(), V, C));
  embedding_backward(mat(dwte_d.data(), V, C), cmat(dout_d.data(), N, C), dtok);
  std::vector<float> want(N * C);
  std::vector<double> dwte(dwte0.begin(), dwte0.end());
  for (int i = 0; i < N; ++i)
    for (int c = 0; c < C; ++c) {
      want[i * C + c] = wte[tok[i] * C + c];
      dwte[tok[i] * C + c] += dout[i * C + c];
    }
  EXPECT_EQ(test::to_host(out), want) << "forward copies rows";
  test::expect_close(test::to_host(dwte_d), dwte, 1e-5, 1e-5, "dwte accumulates");
}

}  // namespace
}  // namespace est
