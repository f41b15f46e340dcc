#include "tensor/ops/conv2d.h"

#include <atomic>
#include <cstdlib>

#include "tensor/dispatch.h"
#include "tensor/env.h"
#include "tensor/ops/conv2d_kernels.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

std::string params_str(const Conv2dParams& p) {
  std::ostringstream os;
  os << "stride (" << p.stride_h << ", " << p.stride_w << "), padding (" << p.pad_h << ", " << p.pad_w << ")";
  if (p.extra_pad_h || p.extra_pad_w) os << " + bottom/right (" << p.extra_pad_h << ", " << p.extra_pad_w << ")";
  os << ", dilation (" << p.dilation_h << ", " << p.dilation_w << "), groups " << p.groups;
  return os.str();
}

void check_params(const char* op, const Conv2dParams& p) {
  EMBER_CHECK(p.stride_h > 0 && p.stride_w > 0, op, ": stride must be positive, got ", params_str(p));
  EMBER_CHECK(p.dilation_h > 0 && p.dilation_w > 0, op, ": dilation must be positive, got ", params_str(p));
  EMBER_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && p.extra_pad_h >= 0 && p.extra_pad_w >= 0, op, ": padding must be non-negative, got ", params_str(p));
  EMBER_CHECK(p.groups > 0, op, ": groups must be positive, got ", params_str(p));
}

void check_same(const char* op, const Tensor& a, const char* a_name, const Tensor& b, const char* b_name) {
  EMBER_CHECK(a.defined(), op, ": ", a_name, " is undefined");
  EMBER_CHECK(b.defined(), op, ": ", b_name, " is undefined");
  EMBER_CHECK(a.dtype() == b.dtype(), op, ": ", a_name, " is ", dtype_name(a.dtype()), " but ", b_name, " is ",
              dtype_name(b.dtype()), " (expected one dtype)");
  EMBER_CHECK(a.device() == b.device(), op, ": ", a_name, " is on ", a.device().str(), " but ", b_name, " is on ",
              b.device().str());
  EMBER_CHECK(is_floating(a.dtype()), op, ": dtype ", dtype_name(a.dtype()), " not supported (expected floating)");
}

}  // namespace

const char* conv_backend_name(ConvBackend backend) {
  switch (backend) {
    case ConvBackend::automatic: return "auto";
    case ConvBackend::native: return "native";
    case ConvBackend::cudnn: return "cudnn";
  }
  return "?";
}

ConvBackend parse_conv_backend(const char* value) {
  return static_cast<ConvBackend>(parse_env_choice("EMBER_CONV", value, {"auto", "native", "cudnn"}, 0));
}

static std::atomic<int>& conv_backend_setting() {
  static std::atomic<int> setting{static_cast<int>(parse_conv_backend(std::getenv("EMBER_CONV")))};
  return setting;
}

ConvBackend conv_backend() { return static_cast<ConvBackend>(conv_backend_setting().load()); }
void set_conv_backend(ConvBackend backend) { conv_backend_setting().store(static_cast<int>(backend)); }

Conv2dGeometry conv2d_geometry(const Shape& xs, const Shape& ws, const Conv2dParams& p) {
  check_params("conv2d", p);
  EMBER_CHECK(xs.size() == 4, "conv2d: input must be (N, C, H, W), got ", shape_str(xs));
  EMBER_CHECK(ws.size() == 4, "conv2d: weight must be (O, C/groups, kh, kw), got ", shape_str(ws));
  Conv2dGeometry g{};
  g.N = xs[0], g.C = xs[1], g.H = xs[2], g.W = xs[3];
  g.O = ws[0], g.kh = ws[2], g.kw = ws[3];
  g.groups = p.groups;
  g.sh = p.stride_h, g.sw = p.stride_w, g.ph = p.pad_h, g.pw = p.pad_w, g.dh = p.dilation_h, g.dw = p.dilation_w;
  g.eh = p.extra_pad_h, g.ew = p.extra_pad_w;
  EMBER_CHECK(g.C % g.groups == 0, "conv2d: input ", shape_str(xs), " has ", g.C, " channels, not divisible by groups ",
              g.groups);
  EMBER_CHECK(g.O > 0 && g.O % g.groups == 0, "conv2d: weight ", shape_str(ws), " has ", g.O,
              " output channels, expected a positive multiple of groups ", g.groups);
  g.Cg = g.C / g.groups;
  g.Og = g.O / g.groups;
  EMBER_CHECK(ws[1] == g.Cg, "conv2d: input ", shape_str(xs), " with groups ", g.groups, " needs weight dim 1 = ",
              g.Cg, " (C/groups), but weight is ", shape_str(ws));
  EMBER_CHECK(g.kh > 0 && g.kw > 0, "conv2d: empty kernel in weight ", shape_str(ws));
  const int64_t ext_h = g.dh * (g.kh - 1) + 1, ext_w = g.dw * (g.kw - 1) + 1;
  EMBER_CHECK(ext_h <= g.Hp() && ext_w <= g.Wp(), "conv2d: kernel ", g.kh, "x", g.kw, " (extent ", ext_h, "x", ext_w,
              " with dilation) is larger than the padded input ", g.Hp(), "x", g.Wp(), " (input ", shape_str(xs), ", weight ", shape_str(ws), ", ", params_str(p), ")");
  g.OH = (g.Hp() - ext_h) / g.sh + 1;
  g.OW = (g.Wp() - ext_w) / g.sw + 1;
  return g;
}

Shape conv2d_output_shape(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p) {
  Conv2dGeometry g = conv2d_geometry(x_shape, w_shape, p);
  return {g.N, g.O, g.OH, g.OW};
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_same("conv2d", x, "input", w, "weight");
  Conv2dGeometry g = conv2d_geometry(x.shape(), w.shape(), p);
  if (bias.defined()) {
    check_same("conv2d", x, "input", bias, "bias");
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == g.O, "conv2d: bias must be (", g.O, ") for weight ",
                w.shape_str(), ", got ", bias.shape_str());
  }
  Tensor out = empty({g.N, g.O, g.OH, g.OW}, x.dtype(), x.device());
  Tensor xc = x.contiguous(), wc = w.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  profile_count(g.flops(), static_cast<double>(x.nbytes() + w.nbytes() + out.nbytes()));
  dispatch("conv2d", x.device(),
           [&] { cpu::conv2d_forward(xc, wc, bc, out, g); },
           [&] { cuda::conv2d_forward(xc, wc, bc, out, g); });
  return out;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  check_same("conv2d_backward_input", grad_out, "grad_out", w, "weight");
  Conv2dGeometry g = conv2d_geometry(x_shape, w.shape(), p);
  Shape want{g.N, g.O, g.OH, g.OW};
  EMBER_CHECK(grad_out.shape() == want, "conv2d_backward_input: grad_out is ", grad_out.shape_str(), ", expected ",
              shape_str(want), " for input ", shape_str(x_shape), " and weight ", w.shape_str());
  Tensor grad_x = empty(x_shape, w.dtype(), w.device());
  Tensor gc = grad_out.contiguous(), wc = w.contiguous();
  profile_count(g.flops(), static_cast<double>(grad_out.nbytes() + w.nbytes() + grad_x.nbytes()));
  dispatch("conv2d_backward_input", w.device(),
           [&] { cpu::conv2d_backward_input(gc, wc, grad_x, g); },
           [&] { cuda::conv2d_backward_input(gc, wc, grad_x, g); });
  return grad_x;
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& w_shape, const Conv2dParams& p) {
  check_same("conv2d_backward_weight", grad_out, "grad_out", x, "input");
  Conv2dGeometry g = conv2d_geometry(x.shape(), w_shape, p);
  Shape want{g.N, g.O, g.OH, g.OW};
  EMBER_CHECK(grad_out.shape() == want, "conv2d_backward_weight: grad_out is ", grad_out.shape_str(), ", expected ",
              shape_str(want), " for input ", x.shape_str(), " and weight ", shape_str(w_shape));
  Tensor grad_w = empty(w_shape, x.dtype(), x.device());
  Tensor gc = grad_out.contiguous(), xc = x.contiguous();
  profile_count(g.flops(), static_cast<double>(grad_out.nbytes() + x.nbytes() + grad_w.nbytes()));
  dispatch("conv2d_backward_weight", x.device(),
           [&] { cpu::conv2d_backward_weight(gc, xc, grad_w, g); },
           [&] { cuda::conv2d_backward_weight(gc, xc, grad_w, g); });
  return grad_w;
}

}  // namespace ember
