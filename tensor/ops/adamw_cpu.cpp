#include <cmath>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/adamw.h"

namespace ember::cpu {

// w, g, m, v: (n) contiguous. Each chunk is one pass over its slice of the four arrays; the
// loop body has no branches (the Adam/AdamW choice is folded into decay_factor and l2) so the
// compiler vectorizes it.
template <class T>
static void adamw_kernel(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n,
                         const AdamWCoefficients& c) {
  const T one_minus_beta1 = static_cast<T>(c.one_minus_beta1);
  const T beta2 = static_cast<T>(c.beta2), one_minus_beta2 = static_cast<T>(c.one_minus_beta2);
  const T eps = static_cast<T>(c.eps), decay = static_cast<T>(c.decay_factor), l2 = static_cast<T>(c.l2);
  const T step_size = static_cast<T>(c.step_size), inv_bc2 = static_cast<T>(c.inv_bias_correction2_sqrt);
  parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T wi = w[i];
      const T gi = g[i] + l2 * wi;
      const T mi = m[i] + one_minus_beta1 * (gi - m[i]);
      const T vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      const T denom = std::sqrt(vi) * inv_bc2 + eps;
      w[i] = wi * decay - step_size * mi / denom;
    }
  });
}

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWCoefficients& c) {
  dispatch_float(param.dtype(), "adamw_update", [&](auto tag) {
    using T = decltype(tag);
    adamw_kernel<T>(param.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(), param.numel(), c);
  });
}

}  // namespace ember::cpu
