#include "tensor/cpu/parallel.h"
#include "tensor/ops/sgd.h"

namespace ember::cpu {

// w, g, b: (n) contiguous. Three loop shapes, so each inner loop is branch-free and vectorizes.
template <class T>
static void sgd_kernel(T* __restrict w, const T* __restrict g, T* __restrict b, int64_t n, const SGDStep& s) {
  const T lr = static_cast<T>(s.lr), wd = static_cast<T>(s.weight_decay), mu = static_cast<T>(s.momentum);
  const T keep = static_cast<T>(1.0 - s.dampening);
  // Nesterov: d + μ·b; plain momentum: b. Both are d_weight·d + b_weight·b.
  const T d_weight = s.nesterov ? T(1) : T(0), b_weight = s.nesterov ? mu : T(1);
  const bool use_momentum = s.momentum != 0.0, first = s.first_step;
  parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
    if (!use_momentum) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) w[i] = w[i] - lr * (g[i] + wd * w[i]);
      return;
    }
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T d = g[i] + wd * w[i];
      // on the first step the buffer starts as d (b[i] may hold anything, even NaN: not read)
      const T bi = first ? d : mu * b[i] + keep * d;
      b[i] = bi;
      w[i] = w[i] - lr * (d_weight * d + b_weight * bi);
    }
  });
}

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s) {
  dispatch_float(param.dtype(), "sgd_update", [&](auto tag) {
    using T = decltype(tag);
    T* b = s.momentum != 0.0 ? momentum_buffer.data<T>() : nullptr;
    sgd_kernel<T>(param.data<T>(), grad.data<T>(), b, param.numel(), s);
  });
}

}  // namespace ember::cpu
