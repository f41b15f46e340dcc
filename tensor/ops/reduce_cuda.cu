#include <cfloat>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/reduce_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kMaxRedDims = 8;
constexpr int kBlock = 256;

struct Plan {  // ReducePlan flattened into kernel arguments
  int nk, nr;
  int64_t kept_sizes[kMaxRedDims + 4], kept_strides[kMaxRedDims + 4];
  int64_t red_sizes[kMaxRedDims], red_strides[kMaxRedDims];
  int64_t reduced;
};

template <class A>
struct Acc {
  A v;
  int64_t i;
};

template <ReduceOp Op, class A>
__device__ __forceinline__ void step(Acc<A>& a, A v, int64_t i) {
  if constexpr (Op == ReduceOp::sum) {
    a.v += v;
  } else {
    constexpr bool is_max = Op == ReduceOp::max || Op == ReduceOp::argmax;
    bool a_nan = a.v != a.v, v_nan = v != v, take;
    if (a.i < 0) take = true;
    else if (a_nan || v_nan) take = v_nan && (!a_nan || i < a.i);  // the first NaN wins
    else if (v == a.v) take = i < a.i;                             // ties: the first index
    else take = is_max ? v > a.v : v < a.v;
    if (take) a = {v, i};
  }
}

// One block per output element: each thread strides over the reduced range, then a
// shared-memory tree combines the block's partial results.
// x: strided input; out: (outputs,) contiguous.
template <ReduceOp Op, class T, class TO>
__global__ void reduce_kernel(const T* x, TO* out, Plan p) {
  // Integers (and bool, summed as counts) accumulate exactly in int64; f64 in double; the rest in float.
  using A = std::conditional_t<std::is_integral_v<T>, int64_t,
                               std::conditional_t<std::is_same_v<T, double>, double, float>>;
  __shared__ A sv[kBlock];
  __shared__ int64_t si[kBlock];
  int64_t o = blockIdx.x;
  int64_t base = 0, rem = o;
  for (int d = p.nk - 1; d >= 0; --d) {
    base += (rem % p.kept_sizes[d]) * p.kept_strides[d];
    rem /= p.kept_sizes[d];
  }
  Acc<A> acc;
  if constexpr (Op == ReduceOp::sum) acc = {A(0), 0};
  else acc = {A(0), -1};
  for (int64_t r = threadIdx.x; r < p.reduced; r += blockDim.x) {
    int64_t off = base, q = r;
    for (int d = p.nr - 1; d >= 0; --d) {
      off += (q % p.red_sizes[d]) * p.red_strides[d];
      q /= p.red_sizes[d];
    }
    step<Op>(acc, static_cast<A>(static_cast<acc_t<T>>(x[off])), r);
  }
  sv[threadIdx.x] = acc.v;
  si[threadIdx.x] = acc.i;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      Acc<A> a{sv[threadIdx.x], si[threadIdx.x]};
      Acc<A> b{sv[threadIdx.x + s], si[threadIdx.x + s]};
      if constexpr (Op == ReduceOp::sum) {
        a.v += b.v;
      } else if (b.i >= 0) {
        step<Op>(a, b.v, b.i);
      }
      sv[threadIdx.x] = a.v;
      si[threadIdx.x] = a.i;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if constexpr (Op == ReduceOp::argmax || Op == ReduceOp::argmin) out[o] = static_cast<TO>(si[0]);
    else out[o] = convert<TO>(sv[0]);
  }
}

template <ReduceOp Op, class T, class TO>
void launch(const Tensor& x, const Tensor& out, const Plan& p, int64_t outputs) {
  if (outputs == 0) return;
  reduce_kernel<Op, T, TO><<<static_cast<unsigned>(outputs), kBlock, 0, stream_of(current_stream())>>>(
      static_cast<const T*>(x.data_ptr()), static_cast<TO*>(out.data_ptr()), p);
  EMBER_CUDA_CHECK_LAUNCH("reduce_kernel");
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, const Tensor& out, const ReducePlan& plan) {
  EMBER_CHECK(plan.red_sizes.size() <= kMaxRedDims && plan.kept_sizes.size() <= kMaxRedDims + 4,
              "reduce (cuda): too many dims");
  Plan p{};
  p.nk = static_cast<int>(plan.kept_sizes.size());
  p.nr = static_cast<int>(plan.red_sizes.size());
  for (int d = 0; d < p.nk; ++d) {
    p.kept_sizes[d] = plan.kept_sizes[d];
    p.kept_strides[d] = plan.kept_strides[d];
  }
  for (int d = 0; d < p.nr; ++d) {
    p.red_sizes[d] = plan.red_sizes[d];
    p.red_strides[d] = plan.red_strides[d];
  }
  p.reduced = plan.reduced;
  dispatch_all(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    dispatch_reduce_op(op, [&](auto op_tag) {
      constexpr ReduceOp Op = decltype(op_tag)::value;
      // the result: i64 indices for arg ops, and a count for a sum of bools (reduce() lets bool
      // through for sum only)
      if constexpr (std::is_same_v<T, bool>) {
        if constexpr (Op == ReduceOp::sum) launch<Op, T, int64_t>(x, out, p, plan.outputs);
      } else {
        launch<Op, T, std::conditional_t<reduce_op_gives_index(Op), int64_t, T>>(x, out, p, plan.outputs);
      }
    });
  });
}

}  // namespace ember::cuda
