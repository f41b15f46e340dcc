#include <Eigen/Core>
#include <cmath>
#include <limits>

#include "tensor/convert.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops/reduce_kernels.h"

namespace ember::cpu {

namespace {

// The running state of one reduction: value and (for arg ops) its linear reduced index.
struct Acc {
  double v;
  int64_t i;
};

template <ReduceOp Op>
Acc identity() {
  if constexpr (Op == ReduceOp::sum) return {0.0, 0};
  if constexpr (Op == ReduceOp::max || Op == ReduceOp::argmax) return {-std::numeric_limits<double>::infinity(), -1};
  return {std::numeric_limits<double>::infinity(), -1};
}

template <ReduceOp Op>
inline void step(Acc& a, double v, int64_t i) {
  if constexpr (Op == ReduceOp::sum) {
    a.v += v;
  } else if constexpr (Op == ReduceOp::max || Op == ReduceOp::argmax) {
    if (a.i < 0 || v > a.v || (v != v && a.v == a.v)) a = {v, i};  // first NaN wins, then stays
  } else {
    if (a.i < 0 || v < a.v || (v != v && a.v == a.v)) a = {v, i};
  }
}

template <ReduceOp Op>
inline void combine(Acc& a, const Acc& b) {
  if constexpr (Op == ReduceOp::sum) {
    a.v += b.v;
  } else if (b.i >= 0) {
    // b covers later indices than a, so ties keep a (the first occurrence).
    bool take = a.i < 0 || (b.v != b.v && a.v == a.v);
    if constexpr (Op == ReduceOp::max || Op == ReduceOp::argmax) take = take || (a.v == a.v && b.v > a.v);
    else take = take || (a.v == a.v && b.v < a.v);
    if (take) a = b;
  }
}

// Reduces x[base + r-th reduced element] for r in [begin, end).
template <ReduceOp Op, class T>
Acc reduce_range(const T* x, int64_t base, const ReducePlan& p, int64_t begin, int64_t end) {
  Acc acc = identity<Op>();
  const int64_t nd = static_cast<int64_t>(p.red_sizes.size());
  if (begin >= end) return acc;  // an empty range (a sum over a size-0 dim): nothing to index
  if (nd == 0) {
    if (begin < end) step<Op>(acc, static_cast<double>(static_cast<acc_t<T>>(x[base])), 0);
    return acc;
  }
  int64_t idx[16];
  int64_t rem = begin;
  for (int64_t d = nd - 1; d >= 0; --d) {
    idx[d] = rem % p.red_sizes[d];
    rem /= p.red_sizes[d];
  }
  const int64_t inner = p.red_sizes[nd - 1], inner_stride = p.red_strides[nd - 1];
  int64_t r = begin;
  while (r < end) {
    int64_t off = base;
    for (int64_t d = 0; d < nd - 1; ++d) off += idx[d] * p.red_strides[d];
    int64_t run = std::min(inner - idx[nd - 1], end - r);
    const T* px = x + off + idx[nd - 1] * inner_stride;
    if constexpr (Op == ReduceOp::sum) {
      double s = 0;
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        if (inner_stride == 1) {  // vectorized (Eigen packets), accumulated in double
          s = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(px, run).template cast<double>().sum();
          acc.v += s;
          r += run;
          idx[nd - 1] += run;
          for (int64_t d = nd - 1; d > 0 && idx[d] >= p.red_sizes[d]; --d) {
            idx[d] = 0;
            idx[d - 1]++;
          }
          continue;
        }
      }
      if (inner_stride == 1) {
        for (int64_t j = 0; j < run; ++j) s += static_cast<double>(static_cast<acc_t<T>>(px[j]));
      } else {
        for (int64_t j = 0; j < run; ++j) s += static_cast<double>(static_cast<acc_t<T>>(px[j * inner_stride]));
      }
      acc.v += s;
    } else {
      for (int64_t j = 0; j < run; ++j)
        step<Op>(acc, static_cast<double>(static_cast<acc_t<T>>(px[j * inner_stride])), r + j);
    }
    r += run;
    idx[nd - 1] += run;
    for (int64_t d = nd - 1; d > 0 && idx[d] >= p.red_sizes[d]; --d) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
  return acc;
}

template <ReduceOp Op, class T, class TO>
void reduce_impl(const Tensor& x, const Tensor& out, const ReducePlan& p) {
  const T* px = static_cast<const T*>(x.data_ptr());
  TO* po = static_cast<TO*>(out.data_ptr());
  const int64_t nk = static_cast<int64_t>(p.kept_sizes.size());
  auto base_of = [&](int64_t o) {
    int64_t off = 0;
    for (int64_t d = nk - 1; d >= 0; --d) {
      off += (o % p.kept_sizes[d]) * p.kept_strides[d];
      o /= p.kept_sizes[d];
    }
    return off;
  };
  auto store = [&](int64_t o, const Acc& a) {
    if constexpr (Op == ReduceOp::argmax || Op == ReduceOp::argmin) po[o] = static_cast<TO>(a.i);
    else po[o] = convert<TO>(a.v);
  };
  const int threads = num_threads();
  if constexpr (Op == ReduceOp::sum && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
    // Summing the rows of an (R, K) matrix (a bias gradient, a column sum): walking each
    // column would stride through memory, so add whole rows into per-column accumulators,
    // with threads splitting the columns.
    if (p.kept_sizes.size() == 1 && p.kept_strides[0] == 1 && p.red_sizes.size() == 1 && p.red_strides[0] >= p.outputs) {
      const int64_t K = p.outputs, R = p.reduced, ld = p.red_strides[0];
      parallel_for(K, 64, [&](int64_t b, int64_t e) {
        std::vector<double> acc(e - b, 0.0);
        for (int64_t r = 0; r < R; ++r) {
          const T* row = px + r * ld + b;
          for (int64_t k = 0; k < e - b; ++k) acc[k] += static_cast<double>(row[k]);
        }
        for (int64_t k = b; k < e; ++k) po[k] = static_cast<TO>(acc[k - b]);
      });
      return;
    }
  }
  if (p.outputs >= threads || p.reduced < 32768) {
    parallel_for(p.outputs, std::max<int64_t>(1, 16384 / std::max<int64_t>(p.reduced, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) store(o, reduce_range<Op, T>(px, base_of(o), p, 0, p.reduced));
    });
    return;
  }
  // Few outputs, long reductions: split each reduction across threads, then combine in order.
  for (int64_t o = 0; o < p.outputs; ++o) {
    std::vector<Acc> partial(threads, identity<Op>());
    int64_t base = base_of(o);
    parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        partial[t] = reduce_range<Op, T>(px, base, p, p.reduced * t / threads, p.reduced * (t + 1) / threads);
    });
    Acc acc = identity<Op>();
    for (auto& a : partial) combine<Op>(acc, a);
    store(o, acc);
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, const Tensor& out, const ReducePlan& plan) {
  EMBER_CHECK(plan.red_sizes.size() <= 16, "reduce: at most 16 reduced dims");
  dispatch_all(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    dispatch_reduce_op(op, [&](auto op_tag) {
      constexpr ReduceOp Op = decltype(op_tag)::value;
      // the result: i64 indices for arg ops, and a count for a sum of bools
      constexpr bool as_i64 = reduce_op_gives_index(Op) || std::is_same_v<T, bool>;
      reduce_impl<Op, T, std::conditional_t<as_i64, int64_t, T>>(x, out, plan);
    });
  });
}

// out[r] = Σ_j a[r·len + j] · b[r·len + j]  (a, b contiguous; f32 accumulates in double per row)
void dot_rows(const Tensor& a, const Tensor& b, const Tensor& out, int64_t rows, int64_t len) {
  dispatch_float(a.dtype(), "mul_sum_to", [&](auto tag) {
    using T = decltype(tag);
    using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
    const T* pa = static_cast<const T*>(a.data_ptr());
    const T* pb = static_cast<const T*>(b.data_ptr());
    T* po = static_cast<T*>(out.data_ptr());
    parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        Eigen::Map<const Vec> x(pa + r * len, len), y(pb + r * len, len);
        po[r] = static_cast<T>((x * y).template cast<double>().sum());
      }
    });
  });
}

}  // namespace ember::cpu
