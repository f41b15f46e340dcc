// Device helpers shared by the softmax family and cross-entropy (a fused log-softmax):
// the online (max, sum-of-exp) state and reductions over a group of W threads that share a row.
//
// A "group" is W consecutive threads of a block: W = 1 (a thread per row), W <= 32 (part or all
// of a warp; shuffles only) or W = blockDim.x > 32 (the whole block; shuffles, then one value
// per warp through shared memory). Every thread of the block must call a group reduction the
// same number of times (threads without a row take part with the identity).
// Use from .cu files only.
#pragma once
#include <limits>
#include <type_traits>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"

namespace ember::cuda {

// The accumulation type of the softmax kernels: double for f64, float otherwise.
template <class T>
using softmax_acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

__device__ __forceinline__ float exp_acc(float v) { return expf(v); }
__device__ __forceinline__ double exp_acc(double v) { return exp(v); }
__device__ __forceinline__ float log_acc(float v) { return logf(v); }
__device__ __forceinline__ double log_acc(double v) { return log(v); }

template <class A, class T>
__device__ __forceinline__ A load_acc(const T& v) {
  return static_cast<A>(static_cast<acc_t<T>>(v));
}

// Online softmax statistics of the values seen so far: m = their max, s = Σ exp(v - m).
// Starts at (-inf, 0). Equal values (v == m) add exp(0) = 1 without computing inf - inf, so
// rows of -inf end with m = -inf (logsumexp -inf) and +inf stays +inf; a NaN makes s NaN.
template <class A>
struct MaxSum {
  A m = -std::numeric_limits<A>::infinity();
  A s = A(0);

  __device__ __forceinline__ void add(A v) {
    if (v > m) {
      s = s * exp_acc(m - v) + A(1);
      m = v;
    } else {
      s += v == m ? A(1) : exp_acc(v - m);
    }
  }
  __device__ __forceinline__ void merge(const MaxSum& o) {
    const A nm = o.m > m ? o.m : m;
    s = (m == nm ? s : s * exp_acc(m - nm)) + (o.m == nm ? o.s : o.s * exp_acc(o.m - nm));
    m = nm;
  }
};

// Σ over the W threads of the group; every thread of the group gets the result.
template <int W, class A>
__device__ __forceinline__ A group_sum(A v) {
#pragma unroll
  for (int o = (W < 32 ? W : 32) / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if constexpr (W > 32) {
    __shared__ A partial[W / 32];
    __syncthreads();  // a previous call's readers are done with `partial`
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    __syncthreads();
    v = partial[0];
#pragma unroll
    for (int i = 1; i < W / 32; ++i) v += partial[i];
  }
  return v;
}

// The merged (max, sum) of the W threads of the group; every thread gets the same result.
template <int W, class A>
__device__ __forceinline__ MaxSum<A> group_max_sum(MaxSum<A> st) {
#pragma unroll
  for (int o = (W < 32 ? W : 32) / 2; o > 0; o >>= 1) {
    MaxSum<A> other;
    other.m = __shfl_xor_sync(0xffffffffu, st.m, o);
    other.s = __shfl_xor_sync(0xffffffffu, st.s, o);
    st.merge(other);
  }
  if constexpr (W > 32) {
    __shared__ A partial_m[W / 32], partial_s[W / 32];
    __syncthreads();
    if (threadIdx.x % 32 == 0) {
      partial_m[threadIdx.x / 32] = st.m;
      partial_s[threadIdx.x / 32] = st.s;
    }
    __syncthreads();
    st.m = partial_m[0];
    st.s = partial_s[0];
#pragma unroll
    for (int i = 1; i < W / 32; ++i) {
      MaxSum<A> other;
      other.m = partial_m[i];
      other.s = partial_s[i];
      st.merge(other);
    }
  }
  return st;
}

}  // namespace ember::cuda
