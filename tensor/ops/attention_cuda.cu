// CUDA attention, composed: S = q·kᵀ with the CUDA matmul (native kernels or cuBLAS, as
// selected), row kernels for the softmax and its gradient, and matmul again for the
// products with v, k and q. S (B, H, N, M) is materialized; 16-bit inputs are computed in
// f32. A fused flash kernel can replace this without changing the interface.
#include <cmath>
#include <cstdint>

#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/attention_kernels.h"
#include "tensor/ops/copy.h"
#include "tensor/ops/matmul.h"

namespace ember::cuda {

namespace {

constexpr int kRowThreads = 128;  // one block per score row; a power of two for the tree reductions

// The mask expanded to (B, H, N, M): bool (true = attend) or additive values of type C.
struct MaskArgs {
  const void* data = nullptr;
  bool is_bool = false;
  int64_t heads = 1, queries = 1;
  int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
};

template <class C>
__device__ __forceinline__ C neg_inf() {
  return static_cast<C>(-INFINITY);
}
__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }

// The mask's term for score row `row` (= (b·H + h)·N + i), column c.
template <class C>
__device__ __forceinline__ C mask_term(const MaskArgs& mk, int64_t row, int64_t c) {
  if (!mk.data) return C(0);
  const int64_t i = row % mk.queries, bh = row / mk.queries;
  const int64_t off = (bh / mk.heads) * mk.s0 + (bh % mk.heads) * mk.s1 + i * mk.s2 + c * mk.s3;
  if (mk.is_bool) return static_cast<const bool*>(mk.data)[off] ? C(0) : neg_inf<C>();
  return static_cast<const C*>(mk.data)[off];
}

struct MaxOp {
  template <class C>
  __device__ C operator()(C a, C b) const { return a > b ? a : b; }
};
struct SumOp {
  template <class C>
  __device__ C operator()(C a, C b) const { return a + b; }
};

// Combines one value per thread of the block; every thread gets the result.
template <class C, class Op>
__device__ C block_reduce(C v, C* shared, Op op) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] = op(shared[threadIdx.x], shared[threadIdx.x + s]);
    __syncthreads();
  }
  C r = shared[0];
  __syncthreads();  // shared is free again
  return r;
}

// s (rows, M), in place: S = s · scale + mask, then P = softmax(S) per row; lse (rows).
template <class C>
__global__ void attention_softmax_rows_kernel(C* s, C* lse, int M, C scale, MaskArgs mk) {
  __shared__ C red[kRowThreads];
  const int64_t row = blockIdx.x;
  C* x = s + row * M;
  C mx = neg_inf<C>();
  for (int c = threadIdx.x; c < M; c += blockDim.x) {
    const C v = x[c] * scale + mask_term<C>(mk, row, c);
    x[c] = v;
    mx = v > mx ? v : mx;
  }
  mx = block_reduce(mx, red, MaxOp{});
  const C m_safe = mx == neg_inf<C>() ? C(0) : mx;  // an all-masked row: every exp is 0
  C sum = 0;
  for (int c = threadIdx.x; c < M; c += blockDim.x) {
    const C e = dev_exp(x[c] - m_safe);
    x[c] = e;
    sum += e;
  }
  sum = block_reduce(sum, red, SumOp{});
  const C inv = sum > 0 ? C(1) / sum : C(0);
  for (int c = threadIdx.x; c < M; c += blockDim.x) x[c] *= inv;
  if (threadIdx.x == 0) lse[row] = sum > 0 ? m_safe + dev_log(sum) : neg_inf<C>();
}

// s (rows, M), in place: P = exp(s · scale + mask − lse), 0 on rows with lse = −∞.
template <class C>
__global__ void attention_probs_kernel(C* s, const C* lse, int M, C scale, MaskArgs mk) {
  const int64_t row = blockIdx.x;
  C* x = s + row * M;
  const C l = lse[row];
  for (int c = threadIdx.x; c < M; c += blockDim.x)
    x[c] = l == neg_inf<C>() ? C(0) : dev_exp(x[c] * scale + mask_term<C>(mk, row, c) - l);
}

// dp (rows, M), in place: dS = P ∘ (dP − Σ_c P·dP) · scale.
template <class C>
__global__ void attention_softmax_backward_kernel(C* dp, const C* p, int M, C scale) {
  __shared__ C red[kRowThreads];
  const int64_t row = blockIdx.x;
  C* g = dp + row * M;
  const C* pr = p + row * M;
  C dot = 0;
  for (int c = threadIdx.x; c < M; c += blockDim.x) dot += pr[c] * g[c];
  dot = block_reduce(dot, red, SumOp{});
  for (int c = threadIdx.x; c < M; c += blockDim.x) g[c] = pr[c] * (g[c] - dot) * scale;
}

MaskArgs mask_args(const Tensor& mask) {
  MaskArgs mk;
  if (!mask.defined()) return mk;
  mk.data = mask.data_ptr();
  mk.is_bool = mask.dtype() == DType::boolean;
  mk.heads = mask.size(1);
  mk.queries = mask.size(2);
  mk.s0 = mask.stride(0);
  mk.s1 = mask.stride(1);
  mk.s2 = mask.stride(2);
  mk.s3 = mask.stride(3);
  return mk;
}

DType compute_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

// B·H·N score rows, one block each.
int64_t check_rows(const Tensor& q) {
  const int64_t rows = q.size(0) * q.size(1) * q.size(2);
  EMBER_CHECK(rows <= INT32_MAX, "scaled_dot_product_attention: ", rows, " query rows exceed the CUDA grid");
  return rows;
}

int row_length(int64_t m) {
  EMBER_CHECK(m <= INT32_MAX, "scaled_dot_product_attention: ", m, " keys exceed the CUDA kernels' range");
  return static_cast<int>(m);
}

}  // namespace

AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale) {
  const DType cd = compute_dtype(q.dtype());
  Tensor qc = q.to(cd), kc = k.to(cd), vc = v.to(cd);
  Tensor s = matmul(qc, kc.transpose(-2, -1));  // (B, H, N, M)
  Tensor lse = empty({q.size(0), q.size(1), q.size(2)}, cd, q.device());  // (B, H, N)
  const int64_t rows = check_rows(q);  // every row runs, so rows with no keys get lse = −∞
  const int m = row_length(s.size(3));
  MaskArgs mk = mask_args(mask);
  cudaStream_t stream = stream_of(current_stream());
  if (rows > 0) {
    dispatch_float(cd, "scaled_dot_product_attention", [&](auto tag) {
      using C = decltype(tag);
      attention_softmax_rows_kernel<C><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
          static_cast<C*>(s.data_ptr()), static_cast<C*>(lse.data_ptr()), m, static_cast<C>(scale), mk);
      EMBER_CUDA_CHECK_LAUNCH("attention_softmax_rows_kernel");
    });
  }
  Tensor out = matmul(s, vc);  // (B, H, N, dv)
  return {out.to(q.dtype()), lse};
}

AttentionGrads attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& mask, double scale) {
  const DType cd = compute_dtype(q.dtype());
  Tensor qc = q.to(cd), kc = k.to(cd), vc = v.to(cd), g = grad_out.to(cd);
  Tensor lse_c = lse.contiguous();
  Tensor p = matmul(qc, kc.transpose(-2, -1));  // (B, H, N, M): S, then P in place
  const int64_t rows = check_rows(q);
  const int m = row_length(p.size(3));
  MaskArgs mk = mask_args(mask);
  cudaStream_t stream = stream_of(current_stream());
  if (rows > 0) {
    dispatch_float(cd, "scaled_dot_product_attention", [&](auto tag) {
      using C = decltype(tag);
      attention_probs_kernel<C><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
          static_cast<C*>(p.data_ptr()), static_cast<const C*>(lse_c.data_ptr()), m, static_cast<C>(scale), mk);
      EMBER_CUDA_CHECK_LAUNCH("attention_probs_kernel");
    });
  }
  Tensor dv = matmul(p.transpose(-2, -1), g);   // Pᵀ·g   (B, H, M, dv)
  Tensor ds = matmul(g, vc.transpose(-2, -1));  // dP = g·vᵀ (B, H, N, M), then dS in place
  if (rows > 0) {
    dispatch_float(cd, "scaled_dot_product_attention", [&](auto tag) {
      using C = decltype(tag);
      attention_softmax_backward_kernel<C><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
          static_cast<C*>(ds.data_ptr()), static_cast<const C*>(p.data_ptr()), m, static_cast<C>(scale));
      EMBER_CUDA_CHECK_LAUNCH("attention_softmax_backward_kernel");
    });
  }
  Tensor dq = matmul(ds, kc);                    // s·dS·k   (B, H, N, d)  (s folded into dS)
  Tensor dk = matmul(ds.transpose(-2, -1), qc);  // s·dSᵀ·q  (B, H, M, d)
  return {dq.to(q.dtype()), dk.to(q.dtype()), dv.to(q.dtype())};
}

}  // namespace ember::cuda
