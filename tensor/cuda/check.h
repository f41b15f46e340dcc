// Checking every CUDA call and launch. Include only from .cu files or CUDA-enabled .cpp code.
#pragma once
#include <cuda_runtime.h>

#include "tensor/error.h"

#define EMBER_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    cudaError_t err_ = (call);                                                              \
    if (err_ != cudaSuccess)                                                                \
      throw ::ember::make_error("CUDA error in ", #call, " at ", __FILE__, ":", __LINE__, \
                                ": ", cudaGetErrorString(err_));                           \
  } while (0)

// After a <<<...>>> launch: catches bad configurations at once (asynchronous faults surface
// at the next synchronizing call, which is checked too).
#define EMBER_CUDA_CHECK_LAUNCH(kernel_name)                                                 \
  do {                                                                                       \
    cudaError_t err_ = cudaGetLastError();                                                   \
    if (err_ != cudaSuccess)                                                                 \
      throw ::ember::make_error("CUDA launch of ", kernel_name, " failed: ", cudaGetErrorString(err_)); \
  } while (0)

namespace ember::cuda {
inline cudaStream_t stream_of(void* s) { return static_cast<cudaStream_t>(s); }
constexpr int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }
}  // namespace ember::cuda
