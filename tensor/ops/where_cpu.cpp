#include "tensor/cpu/loops.h"
#include "tensor/ops/where_kernels.h"

namespace ember::cpu {

// out, cond, a, b: one shape (broadcast dims have stride 0).
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_all(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    map3<T, bool, T, T>(out, cond, a, b, [](bool c, T x, T y) { return c ? x : y; });
  });
}

}  // namespace ember::cpu
