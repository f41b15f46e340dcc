#include "tensor/ops/copy.h"

#include "tensor/cuda/runtime.h"
#include "tensor/dispatch.h"
#include "tensor/ops/copy_kernels.h"

namespace ember {

void copy_into(const Tensor& dst, const Tensor& src) {
  EMBER_CHECK(dst.defined() && src.defined(), "copy: undefined tensor");
  Tensor s = src.expand(dst.shape());
  if (dst.device() == s.device()) {
    dispatch("copy", dst.device(),
             [&] { cpu::copy_strided(dst, s); },
             [&] { cuda::copy_strided(dst, s); });
    return;
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
  dispatch("fill", dst.device(),
           [&] { cpu::fill(dst, value); },
           [&] { cuda::fill(dst, value); });
}

}  // namespace ember
