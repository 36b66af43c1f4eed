#pragma once
#include "views.hpp"

namespace est {

// Packs the rows listed in `index` into a contiguous matrix, so a subnetwork's GEMMs run at their reduced
// sizes instead of multiplying masked zeros: dst (index.size(), cols) = src[index[i], :].
void gather_rows(MatF dst, CMatF src, Vec<const int> index);
// The inverse: dst[index[i], :] = src (index.size(), cols); other rows of dst are left as they are.
void scatter_rows(MatF dst, CMatF src, Vec<const int> index);

}  // namespace est
