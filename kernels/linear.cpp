#include "linear.hpp"

#include "column_sums.hpp"
#include "gemm.hpp"

namespace est {

using gemm::Op;

void bias_add_forward(MatF out, CVecF bias) {
  const int64_t N = out.extent(0), OC = out.extent(1);
  Kokkos::parallel_for(
      "bias_add_forward", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {N, OC}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t o) { out(i, o) += bias(o); });
}

void bias_add_backward(VecF dbias, CMatF dout) {
  column_sums("bias_add_backward", dout.extent(0), dout.extent(1), dbias,
              KOKKOS_LAMBDA(const int64_t i, const int64_t o) { return dout(i, o); });
}

void linear_forward(MatF out, CMatF inp, CMatF weight, CVecF bias) {
  const int64_t N = inp.extent(0), C = inp.extent(1), OC = weight.extent(0);
  gemm::sgemm(Op::N, Op::T, N, OC, C, 1.0f, inp.data(), C, weight.data(), C, 0.0f, out.data(), OC);
  if (bias.extent(0) > 0) bias_add_forward(out, bias);
}

void linear_backward(MatF dinp, MatF dweight, VecF dbias, CMatF dout, CMatF inp, CMatF weight) {
  const int64_t N = inp.extent(0), C = inp.extent(1), OC = weight.extent(0);
  gemm::sgemm(Op::N, Op::N, N, C, OC, 1.0f, dout.data(), OC, weight.data(), C, 0.0f, dinp.data(), C);
  gemm::sgemm(Op::T, Op::N, OC, C, N, 1.0f, dout.data(), OC, inp.data(), C, 0.0f, dweight.data(), C);
  if (dbias.extent(0) > 0) bias_add_backward(dbias, dout);
}

}  // namespace est
