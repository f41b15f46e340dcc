// SGD on CUDA (math: tensor/ops/sgd.h): a per-tensor kernel and a multi-tensor kernel that
// updates every parameter in one launch; both apply sgd_element, so their results are equal.
// T is the parameter's type (f32, f64, bf16, f16), S the momentum buffer's and the arithmetic's
// (f32 for f32 and 16-bit parameters, f64 for f64).
#include <vector>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/multi_tensor.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/sgd_kernels.h"

namespace ember::cuda {

namespace {

template <class S>
struct SGDScalars {
  S lr, wd, mu, keep;
  bool use_momentum, nesterov, first_step;
};

template <class S>
SGDScalars<S> scalars_of(const SGDStep& st) {
  return {S(st.lr), S(st.weight_decay), S(st.momentum), S(1.0 - st.dampening), st.momentum != 0.0, st.nesterov,
          st.first_step};
}

// Element i: w, g (T); b (S, unused without momentum).
template <class T, class S>
__device__ __forceinline__ void sgd_element(T* __restrict__ w, const T* __restrict__ g, S* __restrict__ b, int64_t i,
                                            const SGDScalars<S>& s) {
  const S wi = convert<S>(w[i]);
  S d = convert<S>(g[i]) + s.wd * wi;
  if (s.use_momentum) {
    const S bi = s.first_step ? d : s.mu * b[i] + s.keep * d;
    b[i] = bi;
    d = s.nesterov ? d + s.mu * bi : bi;
  }
  w[i] = convert<T>(wi - s.lr * d);
}

// w, g, b: (n) contiguous; one thread an element, grid-stride.
template <class T, class S>
__global__ void sgd_update_kernel(T* __restrict__ w, const T* __restrict__ g, S* __restrict__ b, int64_t n,
                                  SGDScalars<S> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    sgd_element(w, g, b, i, s);
}

// One tensor of the multi-tensor table.
struct SGDEntry {
  void* w;
  const void* g;
  void* b;  // null without momentum
  int64_t n;
  double lr, wd, mu, keep;
  int32_t use_momentum, nesterov, first_step, pad;
};

template <class T, class S>
__global__ void sgd_multi_tensor_kernel(const SGDEntry* __restrict__ entries, const TensorChunk* __restrict__ chunks,
                                        int64_t num_chunks) {
  for (int64_t k = blockIdx.x; k < num_chunks; k += gridDim.x) {
    const TensorChunk ch = chunks[k];
    const SGDEntry& e = entries[ch.entry];
    const SGDScalars<S> s{S(e.lr), S(e.wd), S(e.mu), S(e.keep), e.use_momentum != 0, e.nesterov != 0, e.first_step != 0};
    const int64_t end = ch.begin + kMultiTensorChunk < e.n ? ch.begin + kMultiTensorChunk : e.n;
    for (int64_t i = ch.begin + threadIdx.x; i < end; i += blockDim.x)
      sgd_element(static_cast<T*>(e.w), static_cast<const T*>(e.g), static_cast<S*>(e.b), i, s);
  }
}

template <class T, class S>
void launch_sgd(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& st) {
  const SGDScalars<S> s = scalars_of<S>(st);
  S* b = s.use_momentum ? static_cast<S*>(momentum_buffer.data_ptr()) : nullptr;
  const int64_t n = param.numel();
  sgd_update_kernel<T, S><<<grid_for(n, 256), 256, 0, stream_of(current_stream())>>>(
      static_cast<T*>(param.data_ptr()), static_cast<const T*>(grad.data_ptr()), b, n, s);
  EMBER_CUDA_CHECK_LAUNCH("sgd_update_kernel");
}

template <class T, class S>
void launch_sgd_multi(const std::vector<Tensor>& p, const std::vector<Tensor>& g, const std::vector<Tensor>& b,
                      const std::vector<SGDStep>& st, const std::vector<size_t>& which) {
  std::vector<SGDEntry> entries;
  std::vector<int64_t> sizes;
  for (size_t i : which) {
    const SGDStep& s = st[i];
    const bool mom = s.momentum != 0.0;
    entries.push_back({p[i].data_ptr(), g[i].data_ptr(), mom ? b[i].data_ptr() : nullptr, p[i].numel(), s.lr,
                       s.weight_decay, s.momentum, 1.0 - s.dampening, mom, s.nesterov, s.first_step, 0});
    sizes.push_back(p[i].numel());
  }
  MultiTensorTable table = upload_multi_tensor_table(entries.data(), sizeof(SGDEntry) * entries.size(), sizes,
                                                     p[which[0]].device());
  sgd_multi_tensor_kernel<T, S><<<multi_tensor_grid(table.num_chunks), kMultiTensorThreads, 0,
                                  stream_of(current_stream())>>>(static_cast<const SGDEntry*>(table.entries()),
                                                                 table.chunks(), table.num_chunks);
  EMBER_CUDA_CHECK_LAUNCH("sgd_multi_tensor_kernel");
}


}  // namespace

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s) {
  dispatch_param(param.dtype(), "sgd_update",
                 [&]<class T, class S>() { launch_sgd<T, S>(param, grad, momentum_buffer, s); });
}

void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_buffers, const std::vector<SGDStep>& steps) {
  for (const std::vector<size_t>& which : indices_by_dtype(params))
    dispatch_param(params[which[0]].dtype(), "sgd_update_multi", [&]<class T, class S>() {
      launch_sgd_multi<T, S>(params, grads, momentum_buffers, steps, which);
    });
}

}  // namespace ember::cuda
