#include "tensor/ops/copy.h"

#include "tensor/cuda/runtime.h"

namespace ember {
namespace cpu {
void copy_strided(const Tensor& dst, const Tensor& src);  // same device, src expanded to dst
void fill(const Tensor& dst, double value);
}  // namespace cpu
namespace cuda {
void copy_strided(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
}  // namespace cuda

[[noreturn, maybe_unused]] static void no_cuda(const char* op) {
  throw make_error(op, ": tensor is on CUDA but ember was built without the CUDA backend");
}

void copy_into(const Tensor& dst, const Tensor& src) {
  EMBER_CHECK(dst.defined() && src.defined(), "copy: undefined tensor");
  Tensor s = src.expand(dst.shape());
  if (dst.device() == s.device()) {
    if (dst.device().is_cpu()) return cpu::copy_strided(dst, s);
#ifdef EMBER_WITH_CUDA
    cuda::set_device(dst.device().index);
    return cuda::copy_strided(dst, s);
#else
    no_cuda("copy");
#endif
  }
  // Across devices: make a contiguous source of dst's dtype, move the bytes, then scatter.
  Tensor staged = empty(dst.shape(), dst.dtype(), s.device());
  copy_into(staged, s);
  Tensor landed = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
  cuda::CopyKind kind = s.device().is_cpu()   ? cuda::CopyKind::host_to_device
                        : dst.device().is_cpu() ? cuda::CopyKind::device_to_host
                                                : cuda::CopyKind::device_to_device;
  int dev = dst.device().is_cuda() ? dst.device().index : s.device().index;
  cuda::set_device(dev);
  cuda::copy_bytes(landed.data_ptr(), staged.data_ptr(), staged.nbytes(), kind, cuda::current_stream());
  if (!dst.is_contiguous()) copy_into(dst, landed);
}

void fill(const Tensor& dst, double value) {
  if (dst.device().is_cpu()) return cpu::fill(dst, value);
#ifdef EMBER_WITH_CUDA
  cuda::set_device(dst.device().index);
  cuda::fill(dst, value);
#else
  no_cuda("fill");
#endif
}

}  // namespace ember
