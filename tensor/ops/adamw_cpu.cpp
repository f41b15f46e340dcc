#include <algorithm>
#include <cmath>
#include <type_traits>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "tensor/cpu/parallel.h"
#include "tensor/ops/adamw_kernels.h"

namespace ember::cpu {

// Elements per block: a block's slices of w, g, m, v and its scratch stay in L1, so the three
// loops below still make one pass over memory.
constexpr int64_t kBlock = 1024;

// out[i] = √in[i]. A loop calling std::sqrt does not vectorize (under -fmath-errno GCC must
// keep errno for negative inputs), so with AVX the packed instructions are spelled out; they
// round correctly, like std::sqrt and CUDA's sqrt.
template <class T>
static void sqrt_array(const T* in, T* out, int64_t n) {
  int64_t i = 0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_sqrt_ps(_mm256_loadu_ps(in + i)));
  } else {
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(out + i, _mm256_sqrt_pd(_mm256_loadu_pd(in + i)));
  }
#endif
  for (; i < n; ++i) out[i] = std::sqrt(in[i]);
}

// One block of n <= kBlock elements: moments first, then √v, then the weights. The first and
// last loops have no calls or branches and vectorize.
template <class T>
static void adamw_block(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n,
                        const AdamWCoefficients& c) {
  const T l2 = static_cast<T>(c.l2), one_minus_beta1 = static_cast<T>(c.one_minus_beta1);
  const T beta2 = static_cast<T>(c.beta2), one_minus_beta2 = static_cast<T>(c.one_minus_beta2);
  const T eps = static_cast<T>(c.eps), decay = static_cast<T>(c.decay_factor);
  const T step_size = static_cast<T>(c.step_size), bc2_sqrt = static_cast<T>(c.bias_correction2_sqrt);
  alignas(64) T root[kBlock];  // √v
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] + l2 * w[i];  // Adam's L2 term (l2 = 0 for AdamW)
    const T mi = m[i];
    m[i] = mi + one_minus_beta1 * (gi - mi);
    v[i] = beta2 * v[i] + one_minus_beta2 * gi * gi;
  }
  sqrt_array(v, root, n);
  for (int64_t i = 0; i < n; ++i) w[i] = w[i] * decay - step_size * m[i] / (root[i] / bc2_sqrt + eps);
}

// w, g, m, v: (n) contiguous, in blocks spread over the threads.
template <class T>
static void adamw_kernel(T* w, const T* g, T* m, T* v, int64_t n, const AdamWCoefficients& c) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(blocks, 32, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t i = b * kBlock;
      adamw_block<T>(w + i, g + i, m + i, v + i, std::min(kBlock, n - i), c);
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
