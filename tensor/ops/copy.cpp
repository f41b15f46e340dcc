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
  const bool direct = s.is_contiguous() && s.dtype() == dst.dtype();
  Tensor staged = direct ? s : empty(dst.shape(), dst.dtype(), s.device());
  if (!direct) copy_into(staged, s);
  Tensor landed = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
  if (s.device().is_cuda() && dst.device().is_cuda()) {
    // Between two GPUs: the copy runs on the destination's stream once the source's stream has
    // made `staged` (an event), and `staged` is not reused before that copy has read it.
    const int from = s.device().index, to = dst.device().index;
    cuda::set_device(from);
    void* src_stream = cuda::current_stream();
    cuda::set_device(to);
    void* dst_stream = cuda::current_stream();
    cuda::copy_peer(landed.data_ptr(), to, dst_stream, staged.data_ptr(), from, src_stream, staged.nbytes());
    record_stream(staged, dst_stream);
  } else {
    // To the host: on the source's stream, waited for. From the host: `staged` is pageable
    // memory, which CUDA has copied aside before copy_bytes returns, so it may go at once.
    const bool up = s.device().is_cpu();
    cuda::set_device(up ? dst.device().index : s.device().index);
    cuda::copy_bytes(landed.data_ptr(), staged.data_ptr(), staged.nbytes(),
                     up ? cuda::CopyKind::host_to_device : cuda::CopyKind::device_to_host, cuda::current_stream());
  }
  if (!dst.is_contiguous()) copy_into(dst, landed);
}

void fill(const Tensor& dst, double value) {
  dispatch("fill", dst.device(),
           [&] { cpu::fill(dst, value); },
           [&] { cuda::fill(dst, value); });
}

}  // namespace ember
