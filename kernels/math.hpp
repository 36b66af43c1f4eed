#pragma once
// Device-callable math: Kokkos 3.4 keeps these in Kokkos::Experimental, Kokkos 4 in Kokkos.
#include <Kokkos_Core.hpp>

namespace est::kmath {

#if KOKKOS_VERSION >= 30700
using Kokkos::exp;
using Kokkos::log;
using Kokkos::sqrt;
using Kokkos::tanh;
using Kokkos::cos;
#else
using Kokkos::Experimental::cos;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::log;
using Kokkos::Experimental::sqrt;
using Kokkos::Experimental::tanh;
#endif

}  // namespace est::kmath
