#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/philox.h"
#include "tensor/ops/random_kernels.h"

namespace ember {

namespace cuda {

// out: (n,) contiguous. Same formulas as random_cpu.cpp, in the same precision, so both
// devices produce identical values.
template <class T>
__global__ void random_fill_kernel(T* out, int64_t n, RandomParams p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double v;
    switch (p.kind) {
      case RandomKind::uniform: v = p.a + (p.b - p.a) * philox_uniform(p.seed, p.offset, p.first + i); break;
      case RandomKind::normal: v = p.a + p.b * philox_normal(p.seed, p.offset, p.first + i); break;
      case RandomKind::bernoulli: v = philox_uniform(p.seed, p.offset, p.first + i) < p.a ? 1.0 : 0.0; break;
      default:
        v = p.a + floor(philox_uniform(p.seed, p.offset, p.first + i) * (p.b - p.a));
        if (v >= p.b) v = p.b - 1;
    }
    out[i] = convert<T>(v);
  }
}

template <class T>
static void launch_random(const Tensor& out, const RandomParams& p) {
  int64_t n = out.numel();
  if (n == 0) return;
  int grid = static_cast<int>(std::min<int64_t>((n + 255) / 256, 65535 * 8));
  random_fill_kernel<T><<<grid, 256, 0, stream_of(current_stream())>>>(static_cast<T*>(out.data_ptr()), n, p);
  EMBER_CUDA_CHECK_LAUNCH("random_fill_kernel");
}

void random_fill(const Tensor& out, const RandomParams& p) {
  dispatch_numeric(out.dtype(), "random", [&](auto tag) { launch_random<decltype(tag)>(out, p); });
}

}  // namespace cuda
}  // namespace ember
