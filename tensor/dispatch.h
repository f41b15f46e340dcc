// The device choice every op makes, in one place: run the CPU kernel or the CUDA kernel by the
// device of the tensors, and say so plainly when the CUDA backend was not built.
//
//   dispatch("conv2d", x.device(),
//            [&] { cpu::conv2d_forward(xc, wc, bc, out, g); },
//            [&] { cuda::conv2d_forward(xc, wc, bc, out, g); });
//
// It returns what the branch taken returns. The CUDA branch makes that device current first.
// Without the CUDA backend it throws instead; cuda_fn is then never called, so the CUDA entry
// points it names need no definition.
#pragma once
#include <string_view>
#include <type_traits>

#include "tensor/cuda/runtime.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace ember {

// The one message for CUDA work asked of a build without the CUDA backend.
inline constexpr const char* kNoCudaBackend = "ember was built without the CUDA backend (configure with EMBER_CUDA=ON)";

// The error to throw for it, naming what was asked: "cuda::set_device: ember was built ...".
inline Error no_cuda_backend(std::string_view what) { return make_error(what, ": ", kNoCudaBackend); }

template <class CpuFn, class CudaFn>
std::invoke_result_t<CpuFn&> dispatch(std::string_view op, Device device, CpuFn&& cpu_fn,
                                      [[maybe_unused]] CudaFn&& cuda_fn) {
  static_assert(std::is_same_v<std::invoke_result_t<CpuFn&>, std::invoke_result_t<CudaFn&>>,
                "dispatch: the CPU and the CUDA branch must return the same type");
  if (device.is_cpu()) return cpu_fn();
#ifdef EMBER_WITH_CUDA
  cuda::set_device(device.index);
  return cuda_fn();
#else
  throw make_error(op, ": the tensor is on ", device.str(), ", but ", kNoCudaBackend);
#endif
}

}  // namespace ember
