// CUDA cross-entropy: f32, f64, bf16, f16 logits (float accumulation; double for f64).
// A group of W threads per row (a warp for C <= 1024, else a 256-thread block) makes one pass:
// online (max, Σexp), Σx and, for probability targets, Σt and Σt·x, merged with the group
// reductions of softmax_cuda.cuh. The backward recomputes softmax from x and the saved lse.
#include "tensor/cuda/runtime.h"
#include "tensor/ops/cross_entropy_kernels.h"
#include "tensor/ops/softmax_cuda.cuh"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;

// The kernels' view of logits and targets; all strides in elements.
template <class T>
struct CrossEntropyArgs {
  const T* x;  // (N, C)
  int64_t x_row, x_col;
  const int64_t* ids;  // (N,) class ids, or null
  int64_t id_stride;
  const T* probs;  // (N, C) probabilities, or null
  int64_t prob_row, prob_col;
  int64_t N, C;
  double keep, spread, eps;  // 1 - ε, ε / C, ε
};

// row_loss, lse: (N,) in the accumulation type. bad_row: the smallest row with an
// out-of-range class id (left at N when there is none).
template <class T, bool kIds, int W>
__global__ void cross_entropy_forward_kernel(CrossEntropyArgs<T> a, softmax_acc_t<T>* row_loss,
                                             softmax_acc_t<T>* lse, unsigned long long* bad_row) {
  using A = softmax_acc_t<T>;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * (blockDim.x / W) + threadIdx.x / W;
  const int lane = threadIdx.x % W;
  const bool active = n < a.N;
  const T* row = a.x + (active ? n : 0) * a.x_row;
  MaxSum<A> st;
  A sum_x = 0, sum_t = 0, sum_tx = 0;
  if (active) {
    for (int64_t c = lane; c < a.C; c += W) {
      const A v = load_acc<A>(row[c * a.x_col]);
      st.add(v);
      sum_x += v;
      if constexpr (!kIds) {
        const A t = load_acc<A>(a.probs[n * a.prob_row + c * a.prob_col]);
        sum_t += t;
        if (t != A(0)) sum_tx += t * v;  // 0·(-inf) would be NaN
      }
    }
  }
  st = group_max_sum<W>(st);
  sum_x = group_sum<W>(sum_x);
  if constexpr (!kIds) {
    sum_t = group_sum<W>(sum_t);
    sum_tx = group_sum<W>(sum_tx);
  }
  if (!active || lane != 0) return;
  const A log_s = log_acc(st.s), m = st.m;
  const A keep = static_cast<A>(a.keep), spread = static_cast<A>(a.spread);
  lse[n] = m + log_s;
  // Q·lse - Σ q x regrouped as Q·log s + (1-ε)·Σ t (m - x) + (ε/C)·Σ (m - x): m - x_t is exact
  // near the max, so a confident row's small loss is not lost in one ulp of lse.
  // Skipped without smoothing, so a -inf logit (a masked class) leaves the loss finite.
  const A spread_term = a.eps > 0 ? spread * (static_cast<A>(a.C) * m - sum_x) : A(0);
  if constexpr (kIds) {
    const int64_t id = a.ids[n * a.id_stride];
    if (id < 0 || id >= a.C) {
      atomicMin(bad_row, static_cast<unsigned long long>(n));
      row_loss[n] = A(0);
      return;
    }
    row_loss[n] = log_s + keep * (m - load_acc<A>(row[id * a.x_col])) + spread_term;
  } else {
    const A q_total = keep * sum_t + static_cast<A>(a.eps);
    row_loss[n] = q_total * log_s + keep * (sum_t * m - sum_tx) + spread_term;
  }
}

// scale: (N,) g_n with stride scale_stride; lse: (N,); dx: (N, C) contiguous.
template <class T, bool kIds, int W>
__global__ void cross_entropy_backward_kernel(CrossEntropyArgs<T> a, const softmax_acc_t<T>* scale,
                                              int64_t scale_stride, const softmax_acc_t<T>* lse, int64_t lse_stride,
                                              T* dx) {
  using A = softmax_acc_t<T>;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * (blockDim.x / W) + threadIdx.x / W;
  const int lane = threadIdx.x % W;
  const bool active = n < a.N;
  const A keep = static_cast<A>(a.keep), spread = static_cast<A>(a.spread);
  A q_total = A(1);
  if constexpr (!kIds) {  // Q_n = (1 - ε) Σ t + ε
    A sum_t = 0;
    if (active)
      for (int64_t c = lane; c < a.C; c += W) sum_t += load_acc<A>(a.probs[n * a.prob_row + c * a.prob_col]);
    q_total = keep * group_sum<W>(sum_t) + static_cast<A>(a.eps);
  }
  if (!active) return;
  const T* row = a.x + n * a.x_row;
  T* drow = dx + n * a.C;
  const A g = scale[n * scale_stride], l = lse[n * lse_stride];
  const int64_t id = kIds ? a.ids[n * a.id_stride] : -1;
  for (int64_t c = lane; c < a.C; c += W) {
    const A p = exp_acc(load_acc<A>(row[c * a.x_col]) - l);
    A q;
    if constexpr (kIds) q = spread + (c == id ? keep : A(0));
    else q = keep * load_acc<A>(a.probs[n * a.prob_row + c * a.prob_col]) + spread;
    drow[c] = convert<T>((q_total * p - q) * g);
  }
}

template <class T>
CrossEntropyArgs<T> make_args(const Tensor& x, const Tensor& target, double eps) {
  CrossEntropyArgs<T> a{};
  a.x = static_cast<const T*>(x.data_ptr());
  a.x_row = x.stride(0);
  a.x_col = x.stride(1);
  if (target.dtype() == DType::i64) {
    a.ids = static_cast<const int64_t*>(target.data_ptr());
    a.id_stride = target.stride(0);
  } else {
    a.probs = static_cast<const T*>(target.data_ptr());
    a.prob_row = target.stride(0);
    a.prob_col = target.stride(1);
  }
  a.N = x.size(0);
  a.C = x.size(1);
  a.keep = 1.0 - eps;
  a.spread = eps / static_cast<double>(a.C);
  a.eps = eps;
  return a;
}

template <class T, bool kIds>
void launch_forward(const CrossEntropyArgs<T>& a, const Tensor& row_loss, const Tensor& lse, const Tensor& bad) {
  using A = softmax_acc_t<T>;
  auto stream = stream_of(current_stream());
  A* pl = static_cast<A*>(row_loss.data_ptr());
  A* plse = static_cast<A*>(lse.data_ptr());
  auto* pbad = bad.defined() ? static_cast<unsigned long long*>(bad.data_ptr()) : nullptr;
  if (a.C <= 1024) {
    const auto grid = static_cast<unsigned>((a.N + kBlock / 32 - 1) / (kBlock / 32));
    cross_entropy_forward_kernel<T, kIds, 32><<<grid, kBlock, 0, stream>>>(a, pl, plse, pbad);
  } else {
    cross_entropy_forward_kernel<T, kIds, kBlock><<<static_cast<unsigned>(a.N), kBlock, 0, stream>>>(a, pl, plse, pbad);
  }
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_forward_kernel");
}

template <class T, bool kIds>
void launch_backward(const CrossEntropyArgs<T>& a, const Tensor& scale, const Tensor& lse, const Tensor& dx) {
  using A = softmax_acc_t<T>;
  auto stream = stream_of(current_stream());
  const A* ps = static_cast<const A*>(scale.data_ptr());
  const A* plse = static_cast<const A*>(lse.data_ptr());
  T* pd = static_cast<T*>(dx.data_ptr());
  if (a.C <= 1024) {
    const auto grid = static_cast<unsigned>((a.N + kBlock / 32 - 1) / (kBlock / 32));
    cross_entropy_backward_kernel<T, kIds, 32>
        <<<grid, kBlock, 0, stream>>>(a, ps, scale.stride(0), plse, lse.stride(0), pd);
  } else {
    cross_entropy_backward_kernel<T, kIds, kBlock>
        <<<static_cast<unsigned>(a.N), kBlock, 0, stream>>>(a, ps, scale.stride(0), plse, lse.stride(0), pd);
  }
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

// After the forward kernel: bad[1] = the class id of row bad[0], when bad[0] < N.
__global__ void cross_entropy_bad_id_kernel(long long* bad, const int64_t* ids, int64_t id_stride, int64_t N) {
  if (bad[0] < N) bad[1] = ids[bad[0] * id_stride];
}

// The class-id check does not wait for the kernel: its verdict (the smallest bad row and its id)
// is read back later (cuda::defer_check), and a bad id raises its Error from the next host sync,
// the next cross_entropy call once the kernel has run, or at once under EMBER_CUDA_SYNC=1.
template <class T>
int64_t forward_typed(const Tensor& x, const Tensor& target, double eps, const Tensor& row_loss, const Tensor& lse) {
  const auto a = make_args<T>(x, target, eps);
  if (!a.ids) {
    launch_forward<T, false>(a, row_loss, lse, Tensor());
    return -1;
  }
  Tensor bad = full({2}, static_cast<double>(a.N), DType::i64, x.device());  // (smallest bad row or N, its id)
  launch_forward<T, true>(a, row_loss, lse, bad);
  cross_entropy_bad_id_kernel<<<1, 1, 0, stream_of(current_stream())>>>(static_cast<long long*>(bad.data_ptr()),
                                                                        a.ids, a.id_stride, a.N);
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_bad_id_kernel");
  const int64_t N = a.N, C = a.C;
  const std::string where = x.device().str();
  defer_check(bad.data_ptr(), 2 * sizeof(int64_t), [N, C, where](const void* host) {
    const auto* v = static_cast<const int64_t*>(host);
    if (v[0] < N)
      throw Error(cross_entropy_bad_id_message(v[1], v[0], C) + "; found on " + where +
                  " after the call had returned, and reported at the next host sync (EMBER_CUDA_SYNC=1 "
                  "reports it at the call)");
  });
  return -1;
}

template <class T>
void backward_typed(const Tensor& scale, const Tensor& x, const Tensor& target, const Tensor& lse, double eps,
                    const Tensor& dx) {
  const auto a = make_args<T>(x, target, eps);
  if (a.ids) launch_backward<T, true>(a, scale, lse, dx);
  else launch_backward<T, false>(a, scale, lse, dx);
}

}  // namespace

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const Tensor& row_loss, const Tensor& lse) {
  return dispatch_all_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    return forward_typed<decltype(tag)>(logits, target, label_smoothing, row_loss, lse);
  });
}

void cross_entropy_backward(const Tensor& scale, const Tensor& logits, const Tensor& target, const Tensor& lse,
                            double label_smoothing, const Tensor& dx) {
  dispatch_all_float(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    backward_typed<decltype(tag)>(scale, logits, target, lse, label_smoothing, dx);
  });
}

}  // namespace ember::cuda
