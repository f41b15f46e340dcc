#include "tensor/cpu/parallel.h"
#include "tensor/ops/sgd_kernels.h"

namespace ember::cpu {

// One contiguous range: w, g, b (n). Separate loops for each case (no momentum, the first
// momentum step, later steps; Nesterov or not, fixed at compile time) keep every loop
// branch-free so it vectorizes.
template <class T, bool kNesterov>
static void sgd_momentum_range(T* __restrict w, const T* __restrict g, T* __restrict b, int64_t n,
                               const SGDStep& s) {
  const T lr = static_cast<T>(s.lr), wd = static_cast<T>(s.weight_decay), mu = static_cast<T>(s.momentum);
  const T keep = static_cast<T>(1.0 - s.dampening);
  if (s.first_step) {  // the buffer starts as d (its old contents, maybe NaN, are not read)
    for (int64_t i = 0; i < n; ++i) {
      const T d = g[i] + wd * w[i];
      b[i] = d;
      w[i] = w[i] - lr * (kNesterov ? d + mu * d : d);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T d = g[i] + wd * w[i];
      const T bi = mu * b[i] + keep * d;
      b[i] = bi;
      w[i] = w[i] - lr * (kNesterov ? d + mu * bi : bi);
    }
  }
}

template <class T>
static void sgd_range(T* __restrict w, const T* __restrict g, T* __restrict b, int64_t n, const SGDStep& s) {
  if (s.momentum == 0.0) {
    const T lr = static_cast<T>(s.lr), wd = static_cast<T>(s.weight_decay);
    for (int64_t i = 0; i < n; ++i) w[i] = w[i] - lr * (g[i] + wd * w[i]);
  } else if (s.nesterov) {
    sgd_momentum_range<T, true>(w, g, b, n, s);
  } else {
    sgd_momentum_range<T, false>(w, g, b, n, s);
  }
}

// w, g, b: (n) contiguous, split across threads.
template <class T>
static void sgd_kernel(T* w, const T* g, T* b, int64_t n, const SGDStep& s) {
  parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
    sgd_range<T>(w + begin, g + begin, b ? b + begin : nullptr, end - begin, s);
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
