#include "linear.hpp"

#include "column_sums.hpp"
#include "gemm.hpp"

namespace est {

using gemm::Op;

void bias_add_forward(MatF out, CVecF bias) {
  const int N = static_cast<int>(out.extent(0)), OC = static_cast<int>(out.extent(1));
  Kokkos::parallel_for(
      "bias_add_forward", teams_per_row(N), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, OC), [&](const int o) { out(i, o) += bias(o); });
      });
}

void bias_add_backward(VecF dbias, CMatF dout) {
  column_sums("bias_add_backward", dout.extent(0), dout.extent(1), dbias,
              KOKKOS_LAMBDA(const int64_t i, const int64_t o) { return dout(i, o); });
}

void linear_forward(MatF out, CMatF inp, CMatF weight, CVecF bias, float alpha, WeightLayout layout) {
  const int64_t N = inp.extent(0), C = inp.extent(1), OC = out.extent(1);
  if (layout == WeightLayout::out_in)
    gemm::sgemm(Op::N, Op::T, N, OC, C, alpha, inp.data(), C, weight.data(), C, 0.0f, out.data(), OC);
  else
    gemm::sgemm(Op::N, Op::N, N, OC, C, alpha, inp.data(), C, weight.data(), OC, 0.0f, out.data(), OC);
  if (bias.extent(0) > 0) bias_add_forward(out, bias);
}

void linear_backward(MatF dinp, MatF dweight, VecF dbias, CMatF dout, CMatF inp, CMatF weight, float alpha,
                     WeightLayout layout) {
  const int64_t N = inp.extent(0), C = inp.extent(1), OC = dout.extent(1);
  if (layout == WeightLayout::out_in) {
    gemm::sgemm(Op::N, Op::N, N, C, OC, alpha, dout.data(), OC, weight.data(), C, 0.0f, dinp.data(), C);
    gemm::sgemm(Op::T, Op::N, OC, C, N, alpha, dout.data(), OC, inp.data(), C, 0.0f, dweight.data(), C);
  } else {
    gemm::sgemm(Op::N, Op::T, N, C, OC, alpha, dout.data(), OC, weight.data(), OC, 0.0f, dinp.data(), C);
    gemm::sgemm(Op::T, Op::N, C, OC, N, alpha, inp.data(), C, dout.data(), OC, 0.0f, dweight.data(), OC);
  }
  if (dbias.extent(0) > 0) bias_add_backward(dbias, dout);
}

}  // namespace est
