#include "tensor/ops/interpolate.h"

#include "tensor/dispatch.h"
#include "tensor/ops/interpolate_kernels.h"
#include "tensor/profiler.h"

namespace ember {

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  EMBER_CHECK(x.defined(), "interpolate_bilinear: undefined tensor");
  EMBER_CHECK(x.dim() == 4, "interpolate_bilinear: input must be (N, C, H, W), got ", x.shape_str());
  EMBER_CHECK(is_floating(x.dtype()), "interpolate_bilinear: dtype ", dtype_name(x.dtype()),
              " not supported (expected floating)");
  EMBER_CHECK(out_h > 0 && out_w > 0, "interpolate_bilinear: output size must be positive, got (", out_h, ", ", out_w,
              ") for input ", x.shape_str());
  EMBER_CHECK(x.size(2) > 0 && x.size(3) > 0, "interpolate_bilinear: empty spatial dims in input ", x.shape_str());
  Tensor out = empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
  Tensor xc = x.contiguous();
  profile_count(8.0 * out.numel(), static_cast<double>(x.nbytes() + out.nbytes()));
  dispatch("interpolate_bilinear", x.device(),
           [&] { cpu::interpolate_bilinear_forward(xc, out, align_corners); },
           [&] { cuda::interpolate_bilinear_forward(xc, out, align_corners); });
  return out;
}

Tensor interpolate_bilinear_backward(const Tensor& grad_out, const Shape& x_shape, bool align_corners) {
  EMBER_CHECK(grad_out.defined(), "interpolate_bilinear_backward: undefined grad_out");
  EMBER_CHECK(x_shape.size() == 4 && x_shape[2] > 0 && x_shape[3] > 0,
              "interpolate_bilinear_backward: input shape must be (N, C, H, W) with H, W > 0, got ", shape_str(x_shape));
  EMBER_CHECK(grad_out.dim() == 4 && grad_out.size(0) == x_shape[0] && grad_out.size(1) == x_shape[1],
              "interpolate_bilinear_backward: grad_out ", grad_out.shape_str(), " does not match input ",
              shape_str(x_shape), " (expected (", x_shape[0], ", ", x_shape[1], ", OH, OW))");
  EMBER_CHECK(is_floating(grad_out.dtype()), "interpolate_bilinear_backward: dtype ", dtype_name(grad_out.dtype()),
              " not supported (expected floating)");
  Tensor grad_x = empty(x_shape, grad_out.dtype(), grad_out.device());
  Tensor gc = grad_out.contiguous();
  profile_count(8.0 * grad_out.numel(), static_cast<double>(grad_out.nbytes() + grad_x.nbytes()));
  dispatch("interpolate_bilinear_backward", grad_out.device(),
           [&] { cpu::interpolate_bilinear_backward(gc, grad_x, align_corners); },
           [&] { cuda::interpolate_bilinear_backward(gc, grad_x, align_corners); });
  return grad_x;
}

}  // namespace ember
