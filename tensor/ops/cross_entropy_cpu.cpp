// CPU cross-entropy (f32, f64): a row per task, double accumulation, any strides.
#include <cmath>
#include <limits>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/cross_entropy_kernels.h"

namespace ember::cpu {

namespace {

// Where the targets are: class ids (N,) or probabilities (N, C), strided.
template <class T>
struct Targets {
  const int64_t* ids = nullptr;  // (N,) when class ids
  int64_t id_stride = 0;
  const T* probs = nullptr;  // (N, C) when probabilities
  int64_t prob_row = 0, prob_col = 0;

  explicit Targets(const Tensor& target) {
    if (target.dtype() == DType::i64) {
      ids = target.data<int64_t>();
      id_stride = target.stride(0);
    } else {
      probs = target.data<T>();
      prob_row = target.stride(0);
      prob_col = target.stride(1);
    }
  }
  double prob(int64_t n, int64_t c) const { return static_cast<double>(probs[n * prob_row + c * prob_col]); }
  // Q_n = Σ_c q_nc: 1 for ids, (1 - ε) Σ_c t_nc + ε for probabilities.
  double q_total(int64_t n, int64_t C, double eps) const {
    if (ids) return 1.0;
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += prob(n, c);
    return (1.0 - eps) * s + eps;
  }
};

template <class T>
int64_t forward_impl(const Tensor& x, const Tensor& target, double eps, const Tensor& row_loss, const Tensor& lse) {
  const int64_t N = x.size(0), C = x.size(1), sn = x.stride(0), sc = x.stride(1);
  const T* px = x.data<T>();
  T* pl = row_loss.data<T>();  // (N,)
  T* plse = lse.data<T>();     // (N,)
  const Targets<T> tg(target);
  if (tg.ids)
    for (int64_t n = 0; n < N; ++n)
      if (tg.ids[n * tg.id_stride] < 0 || tg.ids[n * tg.id_stride] >= C) return n;
  const double keep = 1.0 - eps, spread = eps / static_cast<double>(C);
  parallel_for(N, std::max<int64_t>(1, 4096 / C), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const T* row = px + n * sn;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t c = 0; c < C; ++c) m = (row[c * sc] > m || row[c * sc] != row[c * sc]) ? row[c * sc] : m;
      const double shift = std::isinf(m) ? 0.0 : static_cast<double>(m);  // as in softmax_cpu.cpp
      double s = 0, sum_x = 0, sum_t = 0, sum_tx = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double v = static_cast<double>(row[c * sc]);
        s += std::exp(v - shift);
        sum_x += v;
        if (tg.probs) {
          const double t = tg.prob(n, c);
          sum_t += t;
          if (t != 0) sum_tx += t * v;  // 0·(-inf) would be NaN
        }
      }
      const double l = shift + std::log(s);
      // Σ_c q_nc x_nc, and Q_n = Σ_c q_nc. Without smoothing the Σ x term is skipped, so a -inf
      // logit (a masked class) leaves the loss finite.
      double q_total = 1.0, q_dot_x = eps > 0 ? spread * sum_x : 0.0;
      if (tg.ids) {
        q_dot_x += keep * static_cast<double>(row[tg.ids[n * tg.id_stride] * sc]);
      } else {
        q_dot_x += keep * sum_tx;
        q_total = keep * sum_t + eps;
      }
      pl[n] = static_cast<T>(q_total * l - q_dot_x);
      plse[n] = static_cast<T>(l);
    }
  });
  return -1;
}

template <class T>
void backward_impl(const Tensor& scale, const Tensor& x, const Tensor& target, const Tensor& lse, double eps,
                   const Tensor& dx) {
  const int64_t N = x.size(0), C = x.size(1), sn = x.stride(0), sc = x.stride(1);
  const T* px = x.data<T>();
  const T* pg = scale.data<T>();  // (N,), stride ss (0 for sum/mean)
  const int64_t ss = scale.stride(0);
  const T* plse = lse.data<T>();  // (N,)
  const int64_t sl = lse.stride(0);
  T* pd = dx.data<T>();  // (N, C) contiguous
  const Targets<T> tg(target);
  const double keep = 1.0 - eps, spread = eps / static_cast<double>(C);
  parallel_for(N, std::max<int64_t>(1, 4096 / C), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const T* row = px + n * sn;
      T* drow = pd + n * C;
      const double g = static_cast<double>(pg[n * ss]), l = static_cast<double>(plse[n * sl]);
      const double q_total = tg.q_total(n, C, eps);
      const int64_t id = tg.ids ? tg.ids[n * tg.id_stride] : -1;
      for (int64_t c = 0; c < C; ++c) {
        const double p = std::exp(static_cast<double>(row[c * sc]) - l);
        const double q = tg.ids ? spread + (c == id ? keep : 0.0) : keep * tg.prob(n, c) + spread;
        drow[c] = static_cast<T>((q_total * p - q) * g);
      }
    }
  });
}

}  // namespace

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const Tensor& row_loss, const Tensor& lse) {
  return dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    return forward_impl<decltype(tag)>(logits, target, label_smoothing, row_loss, lse);
  });
}

void cross_entropy_backward(const Tensor& scale, const Tensor& logits, const Tensor& target, const Tensor& lse,
                            double label_smoothing, const Tensor& dx) {
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    backward_impl<decltype(tag)>(scale, logits, target, lse, label_smoothing, dx);
  });
}

}  // namespace ember::cpu
