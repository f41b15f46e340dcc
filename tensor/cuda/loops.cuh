// Elementwise loops over strided tensors on CUDA: the twin of tensor/cpu/loops.h.
// An Indexer carries shape and per-operand strides by value into the kernel; each thread turns
// its linear index into per-operand offsets. Contiguous operands take a fast path with no
// index arithmetic. Use from .cu files only; f is a __device__ (or __host__ __device__) lambda.
#pragma once
#include <array>
#include <cstdint>

#include "tensor/cuda/check.h"
#include "tensor/tensor.h"

namespace ember::cuda {

constexpr int kMaxDims = 12;

template <int N>
struct Indexer {
  int nd = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
  bool contiguous = true;

  __device__ __forceinline__ void offsets(int64_t linear, int64_t* out) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
  }
};

template <int N>
Indexer<N> make_indexer(const std::array<const Tensor*, N>& ts) {
  const Tensor& ref = *ts[0];
  EMBER_CHECK(ref.dim() <= kMaxDims, "cuda loops: at most ", kMaxDims, " dims, got ", ref.dim());
  Indexer<N> ix;
  ix.nd = static_cast<int>(ref.dim());
  for (int d = 0; d < ix.nd; ++d) ix.sizes[d] = ref.shape()[d];
  for (int k = 0; k < N; ++k) {
    ix.contiguous = ix.contiguous && ts[k]->is_contiguous();
    for (int d = 0; d < ix.nd; ++d) ix.strides[k][d] = ts[k]->strides()[d];
  }
  return ix;
}

template <class TO, class TA, class F>
__global__ void map_kernel(int64_t n, TO* out, const TA* a, Indexer<2> ix, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (ix.contiguous) {
      out[i] = f(a[i]);
    } else {
      int64_t off[2];
      ix.offsets(i, off);
      out[off[0]] = f(a[off[1]]);
    }
  }
}

template <class TO, class TA, class TB, class F>
__global__ void map2_kernel(int64_t n, TO* out, const TA* a, const TB* b, Indexer<3> ix, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (ix.contiguous) {
      out[i] = f(a[i], b[i]);
    } else {
      int64_t off[3];
      ix.offsets(i, off);
      out[off[0]] = f(a[off[1]], b[off[2]]);
    }
  }
}

template <class TO, class TA, class TB, class TC, class F>
__global__ void map3_kernel(int64_t n, TO* out, const TA* a, const TB* b, const TC* c, Indexer<4> ix, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[4];
    if (ix.contiguous) {
      off[0] = off[1] = off[2] = off[3] = i;
    } else {
      ix.offsets(i, off);
    }
    out[off[0]] = f(a[off[1]], b[off[2]], c[off[3]]);
  }
}

inline int grid_for(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  return static_cast<int>(g < 65535 * 16 ? (g < 1 ? 1 : g) : 65535 * 16);
}

// out = f(a), all of out's shape; `stream` from cuda::current_stream().
template <class TO, class TA, class F>
void launch_map(const Tensor& out, const Tensor& a, F f, void* stream) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_indexer<2>({&out, &a});
  map_kernel<<<grid_for(n, 256), 256, 0, stream_of(stream)>>>(n, static_cast<TO*>(out.data_ptr()),
                                                              static_cast<const TA*>(a.data_ptr()), ix, f);
  EMBER_CUDA_CHECK_LAUNCH("map_kernel");
}

template <class TO, class TA, class TB, class F>
void launch_map2(const Tensor& out, const Tensor& a, const Tensor& b, F f, void* stream) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_indexer<3>({&out, &a, &b});
  map2_kernel<<<grid_for(n, 256), 256, 0, stream_of(stream)>>>(
      n, static_cast<TO*>(out.data_ptr()), static_cast<const TA*>(a.data_ptr()),
      static_cast<const TB*>(b.data_ptr()), ix, f);
  EMBER_CUDA_CHECK_LAUNCH("map2_kernel");
}

template <class TO, class TA, class TB, class TC, class F>
void launch_map3(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f, void* stream) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_indexer<4>({&out, &a, &b, &c});
  map3_kernel<<<grid_for(n, 256), 256, 0, stream_of(stream)>>>(
      n, static_cast<TO*>(out.data_ptr()), static_cast<const TA*>(a.data_ptr()),
      static_cast<const TB*>(b.data_ptr()), static_cast<const TC*>(c.data_ptr()), ix, f);
  EMBER_CUDA_CHECK_LAUNCH("map3_kernel");
}

}  // namespace ember::cuda
