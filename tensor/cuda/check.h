// Checking every CUDA call and launch. Include only from .cu files or CUDA-enabled .cpp code.
#pragma once
#include <cuda_runtime.h>

#include "tensor/cuda/runtime.h"
#include "tensor/error.h"

#define EMBER_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    cudaError_t err_ = (call);                                                              \
    if (err_ != cudaSuccess)                                                                \
      throw ::ember::make_error("CUDA error in ", #call, " at ", __FILE__, ":", __LINE__, \
                                ": ", cudaGetErrorString(err_));                           \
  } while (0)

// After a <<<...>>> launch: catches bad configurations at once; asynchronous faults surface at
// the next synchronizing call, which is checked too, or, with EMBER_CUDA_SYNC=1, here, naming
// the kernel and the op (cuda::check_launch in tensor/cuda/runtime.h).
#define EMBER_CUDA_CHECK_LAUNCH(kernel_name) ::ember::cuda::check_launch(kernel_name, __FILE__, __LINE__)

namespace ember::cuda {
inline cudaStream_t stream_of(void* s) { return static_cast<cudaStream_t>(s); }
constexpr int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }
}  // namespace ember::cuda
