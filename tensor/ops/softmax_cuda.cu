// CUDA softmax family: f32, f64, bf16, f16 (float accumulation; double for f64).
//
// One kernel template per direction, parameterised by the group width W that shares a row:
//   W = 32   a warp per row (C <= 1024): each lane folds its strided share of the row into an
//            online (max, sum), then butterfly shuffles merge the 32 states;
//   W = 256  a block per row (C > 1024): the same, plus one state per warp through shared memory;
//   W = 1    a thread per row: used when dim is strided (not the last of a contiguous tensor)
//            and rows are plentiful, so threads of a warp read neighbouring addresses.
// Forward reads x twice (statistics, then the write pass); the second read mostly hits L2.
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/softmax_kernels.h"
#include "tensor/ops/softmax_cuda.cuh"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;

// SoftmaxPlan flattened into kernel arguments: row r of operand k starts at bases(r)[k] and
// steps dim_stride[k] along the softmax dim.
template <int N>
struct RowIndexer {
  int nk = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
  int64_t dim_stride[N];

  __device__ __forceinline__ void bases(int64_t r, int64_t* out) const {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = nk - 1; d >= 0; --d) {
      const int64_t i = r % sizes[d];
      r /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
  }
};

template <int N>
RowIndexer<N> make_row_indexer(const SoftmaxPlan& p) {
  EMBER_CHECK(static_cast<int>(p.kept_sizes.size()) <= kMaxDims, "softmax (cuda): at most ", kMaxDims,
              " dims besides the softmax dim, got ", p.kept_sizes.size());
  RowIndexer<N> ix;
  ix.nk = static_cast<int>(p.kept_sizes.size());
  for (int d = 0; d < ix.nk; ++d) {
    ix.sizes[d] = p.kept_sizes[d];
    for (int k = 0; k < N; ++k) ix.strides[k][d] = p.kept_strides[k][d];
  }
  for (int k = 0; k < N; ++k) ix.dim_stride[k] = p.dim_stride[k];
  return ix;
}

// x: rows of C (strided); y: x's shape, or one element per row for logsumexp.
template <SoftmaxMode Mode, class T, int W>
__global__ void softmax_forward_kernel(const T* x, T* y, RowIndexer<2> ix, int64_t rows, int64_t C) {
  using A = softmax_acc_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / W) + threadIdx.x / W;
  const int lane = threadIdx.x % W;
  const bool active = row < rows;  // inactive threads still take part in the group reduction
  int64_t base[2] = {0, 0};
  if (active) ix.bases(row, base);
  const T* xr = x + base[0];
  const int64_t xs = ix.dim_stride[0];
  MaxSum<A> st;
  if (active)
    for (int64_t c = lane; c < C; c += W) st.add(load_acc<A>(xr[c * xs]));
  st = group_max_sum<W>(st);
  if (!active) return;
  if constexpr (Mode == SoftmaxMode::logsumexp) {
    if (lane == 0) y[base[1]] = convert<T>(st.m + log_acc(st.s));
  } else if constexpr (Mode == SoftmaxMode::softmax) {
    T* yr = y + base[1];
    const A inv = A(1) / st.s;
    for (int64_t c = lane; c < C; c += W)
      yr[c * ix.dim_stride[1]] = convert<T>(exp_acc(load_acc<A>(xr[c * xs]) - st.m) * inv);
  } else {
    T* yr = y + base[1];
    const A log_s = log_acc(st.s);  // (x - m) - log s: exact near the max (see softmax_cpu.cpp)
    for (int64_t c = lane; c < C; c += W)
      yr[c * ix.dim_stride[1]] = convert<T>((load_acc<A>(xr[c * xs]) - st.m) - log_s);
  }
}

// g, y, dx: one shape (strided); dx = y (g - Σ g y) or g - exp(y) Σ g along each row.
template <SoftmaxMode Mode, class T, int W>
__global__ void softmax_backward_kernel(const T* g, const T* y, T* dx, RowIndexer<3> ix, int64_t rows, int64_t C) {
  using A = softmax_acc_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / W) + threadIdx.x / W;
  const int lane = threadIdx.x % W;
  const bool active = row < rows;
  int64_t base[3] = {0, 0, 0};
  if (active) ix.bases(row, base);
  const T *gr = g + base[0], *yr = y + base[1];
  T* dr = dx + base[2];
  const int64_t gs = ix.dim_stride[0], ys = ix.dim_stride[1], ds = ix.dim_stride[2];
  A acc = A(0);
  if (active) {
    for (int64_t c = lane; c < C; c += W) {
      if constexpr (Mode == SoftmaxMode::softmax) acc += load_acc<A>(gr[c * gs]) * load_acc<A>(yr[c * ys]);
      else acc += load_acc<A>(gr[c * gs]);
    }
  }
  acc = group_sum<W>(acc);
  if (!active) return;
  for (int64_t c = lane; c < C; c += W) {
    const A gv = load_acc<A>(gr[c * gs]), yv = load_acc<A>(yr[c * ys]);
    if constexpr (Mode == SoftmaxMode::softmax) dr[c * ds] = convert<T>(yv * (gv - acc));
    else dr[c * ds] = convert<T>(gv - exp_acc(yv) * acc);
  }
}

// The group width for a plan: see the file comment.
int group_width(const SoftmaxPlan& p) {
  if (p.dim_stride[0] != 1 && p.rows >= 8192) return 1;
  return p.C <= 1024 ? 32 : kBlock;
}

unsigned blocks_for(int64_t rows, int width) {
  return static_cast<unsigned>((rows + kBlock / width - 1) / (kBlock / width));
}

template <SoftmaxMode Mode, class T>
void launch_forward(const Tensor& x, const Tensor& out, const SoftmaxPlan& p) {
  const auto ix = make_row_indexer<2>(p);
  const int w = group_width(p);
  auto stream = stream_of(current_stream());
  const T* px = static_cast<const T*>(x.data_ptr());
  T* py = static_cast<T*>(out.data_ptr());
  const unsigned grid = blocks_for(p.rows, w);
  if (w == 1) softmax_forward_kernel<Mode, T, 1><<<grid, kBlock, 0, stream>>>(px, py, ix, p.rows, p.C);
  else if (w == 32) softmax_forward_kernel<Mode, T, 32><<<grid, kBlock, 0, stream>>>(px, py, ix, p.rows, p.C);
  else softmax_forward_kernel<Mode, T, kBlock><<<grid, kBlock, 0, stream>>>(px, py, ix, p.rows, p.C);
  EMBER_CUDA_CHECK_LAUNCH("softmax_forward_kernel");
}

template <SoftmaxMode Mode, class T>
void launch_backward(const Tensor& grad, const Tensor& y, const Tensor& dx, const SoftmaxPlan& p) {
  const auto ix = make_row_indexer<3>(p);
  const int w = group_width(p);
  auto stream = stream_of(current_stream());
  const T* pg = static_cast<const T*>(grad.data_ptr());
  const T* py = static_cast<const T*>(y.data_ptr());
  T* pd = static_cast<T*>(dx.data_ptr());
  const unsigned grid = blocks_for(p.rows, w);
  if (w == 1) softmax_backward_kernel<Mode, T, 1><<<grid, kBlock, 0, stream>>>(pg, py, pd, ix, p.rows, p.C);
  else if (w == 32) softmax_backward_kernel<Mode, T, 32><<<grid, kBlock, 0, stream>>>(pg, py, pd, ix, p.rows, p.C);
  else softmax_backward_kernel<Mode, T, kBlock><<<grid, kBlock, 0, stream>>>(pg, py, pd, ix, p.rows, p.C);
  EMBER_CUDA_CHECK_LAUNCH("softmax_backward_kernel");
}

template <class T>
void forward_typed(SoftmaxMode mode, const Tensor& x, const Tensor& out, const SoftmaxPlan& p) {
  switch (mode) {
    case SoftmaxMode::softmax: launch_forward<SoftmaxMode::softmax, T>(x, out, p); break;
    case SoftmaxMode::log_softmax: launch_forward<SoftmaxMode::log_softmax, T>(x, out, p); break;
    case SoftmaxMode::logsumexp: launch_forward<SoftmaxMode::logsumexp, T>(x, out, p); break;
  }
}

template <class T>
void backward_typed(SoftmaxMode mode, const Tensor& grad, const Tensor& y, const Tensor& dx, const SoftmaxPlan& p) {
  if (mode == SoftmaxMode::softmax) launch_backward<SoftmaxMode::softmax, T>(grad, y, dx, p);
  else launch_backward<SoftmaxMode::log_softmax, T>(grad, y, dx, p);
}

}  // namespace

void softmax_forward(SoftmaxMode mode, const Tensor& x, const Tensor& out, const SoftmaxPlan& plan) {
  dispatch_all_float(x.dtype(), "softmax", [&](auto tag) { forward_typed<decltype(tag)>(mode, x, out, plan); });
}

void softmax_backward(SoftmaxMode mode, const Tensor& grad, const Tensor& y, const Tensor& dx,
                      const SoftmaxPlan& plan) {
  dispatch_all_float(y.dtype(), "softmax_backward",
                     [&](auto tag) { backward_typed<decltype(tag)>(mode, grad, y, dx, plan); });
}

}  // namespace ember::cuda
