#include "tensor/ops/pool.h"

#include "tensor/dispatch.h"
#include "tensor/ops/pool_kernels.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

void check_input(const char* op, const Tensor& x) {
  EMBER_CHECK(x.defined(), op, ": undefined tensor");
  EMBER_CHECK(x.dim() == 4, op, ": input must be (N, C, H, W), got ", x.shape_str());
  EMBER_CHECK(is_floating(x.dtype()), op, ": dtype ", dtype_name(x.dtype()), " not supported (expected floating)");
}

void check_x_shape(const char* op, const Shape& x_shape) {
  EMBER_CHECK(x_shape.size() == 4, op, ": input shape must be (N, C, H, W), got ", shape_str(x_shape));
}

Pool2dGeometry window_geometry(const char* op, const Shape& xs, Size2d k, Size2d s, Size2d p) {
  check_x_shape(op, xs);
  EMBER_CHECK(k.h > 0 && k.w > 0, op, ": kernel must be positive, got (", k.h, ", ", k.w, ")");
  EMBER_CHECK(s.h > 0 && s.w > 0, op, ": stride must be positive, got (", s.h, ", ", s.w, ")");
  EMBER_CHECK(p.h >= 0 && p.w >= 0 && 2 * p.h <= k.h && 2 * p.w <= k.w, op, ": padding (", p.h, ", ", p.w,
              ") must be non-negative and at most half the kernel (", k.h, ", ", k.w, ")");
  EMBER_CHECK(k.h <= xs[2] + 2 * p.h && k.w <= xs[3] + 2 * p.w, op, ": kernel (", k.h, ", ", k.w,
              ") is larger than the padded input ", xs[2] + 2 * p.h, "x", xs[3] + 2 * p.w, " (input ", shape_str(xs),
              ", padding (", p.h, ", ", p.w, "))");
  Pool2dGeometry g{};
  g.N = xs[0], g.C = xs[1], g.H = xs[2], g.W = xs[3];
  g.kh = k.h, g.kw = k.w, g.sh = s.h, g.sw = s.w, g.ph = p.h, g.pw = p.w;
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

void check_grad_out(const char* op, const Tensor& grad_out, const Pool2dGeometry& g) {
  EMBER_CHECK(grad_out.defined(), op, ": undefined grad_out");
  EMBER_CHECK(is_floating(grad_out.dtype()), op, ": dtype ", dtype_name(grad_out.dtype()),
              " not supported (expected floating)");
  Shape want{g.N, g.C, g.OH, g.OW};
  EMBER_CHECK(grad_out.shape() == want, op, ": grad_out is ", grad_out.shape_str(), ", expected ", shape_str(want),
              " for input [", g.N, ", ", g.C, ", ", g.H, ", ", g.W, "]");
}

}  // namespace

MaxPoolResult max_pool2d_with_indices(const Tensor& x, Size2d kernel, Size2d stride, Size2d padding) {
  check_input("max_pool2d", x);
  Pool2dGeometry g = window_geometry("max_pool2d", x.shape(), kernel, stride, padding);
  MaxPoolResult r{empty({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device()),
                  empty({g.N, g.C, g.OH, g.OW}, DType::i64, x.device())};
  Tensor xc = x.contiguous();
  profile_count(static_cast<double>(r.out.numel() * g.kh * g.kw),
                static_cast<double>(x.nbytes() + r.out.nbytes() + r.indices.nbytes()));
  dispatch("max_pool2d", x.device(),
           [&] { cpu::max_pool2d_forward(xc, r.out, r.indices, g); },
           [&] { cuda::max_pool2d_forward(xc, r.out, r.indices, g); });
  return r;
}

Tensor max_pool2d(const Tensor& x, Size2d kernel, Size2d stride, Size2d padding) {
  return max_pool2d_with_indices(x, kernel, stride, padding).out;
}

Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Shape& x_shape) {
  check_x_shape("max_pool2d_backward", x_shape);
  EMBER_CHECK(grad_out.defined() && grad_out.dim() == 4, "max_pool2d_backward: grad_out must be (N, C, OH, OW), got ",
              grad_out.defined() ? grad_out.shape_str() : std::string("undefined"));
  EMBER_CHECK(indices.defined() && indices.dtype() == DType::i64 && indices.shape() == grad_out.shape(),
              "max_pool2d_backward: indices must be i64 of grad_out's shape ", grad_out.shape_str(), ", got ",
              indices.defined() ? indices.shape_str() + " " + dtype_name(indices.dtype()) : std::string("undefined"));
  EMBER_CHECK(indices.device() == grad_out.device(), "max_pool2d_backward: indices on ", indices.device().str(),
              " but grad_out on ", grad_out.device().str());
  Pool2dGeometry g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], grad_out.size(2), grad_out.size(3), 0, 0, 0, 0, 0, 0};
  check_grad_out("max_pool2d_backward", grad_out, g);
  Tensor grad_x = empty(x_shape, grad_out.dtype(), grad_out.device());
  Tensor gc = grad_out.contiguous(), ic = indices.contiguous();
  profile_count(static_cast<double>(grad_out.numel()),
                static_cast<double>(grad_out.nbytes() + indices.nbytes() + grad_x.nbytes()));
  dispatch("max_pool2d_backward", grad_out.device(),
           [&] { cpu::max_pool2d_backward(gc, ic, grad_x, g); },
           [&] { cuda::max_pool2d_backward(gc, ic, grad_x, g); });
  return grad_x;
}

Tensor avg_pool2d(const Tensor& x, Size2d kernel, Size2d stride, Size2d padding) {
  check_input("avg_pool2d", x);
  Pool2dGeometry g = window_geometry("avg_pool2d", x.shape(), kernel, stride, padding);
  Tensor out = empty({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device());
  Tensor xc = x.contiguous();
  profile_count(static_cast<double>(out.numel() * g.kh * g.kw), static_cast<double>(x.nbytes() + out.nbytes()));
  dispatch("avg_pool2d", x.device(),
           [&] { cpu::avg_pool2d_forward(xc, out, g); },
           [&] { cuda::avg_pool2d_forward(xc, out, g); });
  return out;
}

Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape, Size2d kernel, Size2d stride,
                           Size2d padding) {
  Pool2dGeometry g = window_geometry("avg_pool2d_backward", x_shape, kernel, stride, padding);
  check_grad_out("avg_pool2d_backward", grad_out, g);
  Tensor grad_x = empty(x_shape, grad_out.dtype(), grad_out.device());
  Tensor gc = grad_out.contiguous();
  profile_count(static_cast<double>(grad_out.numel() * g.kh * g.kw),
                static_cast<double>(grad_out.nbytes() + grad_x.nbytes()));
  dispatch("avg_pool2d_backward", grad_out.device(),
           [&] { cpu::avg_pool2d_backward(gc, grad_x, g); },
           [&] { cuda::avg_pool2d_backward(gc, grad_x, g); });
  return grad_x;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_input("adaptive_avg_pool2d", x);
  EMBER_CHECK(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size must be positive, got (", out_h, ", ", out_w,
              ")");
  EMBER_CHECK(x.size(2) > 0 && x.size(3) > 0, "adaptive_avg_pool2d: empty spatial dims in input ", x.shape_str());
  Pool2dGeometry g{x.size(0), x.size(1), x.size(2), x.size(3), out_h, out_w, 0, 0, 0, 0, 0, 0};
  Tensor out = empty({g.N, g.C, g.OH, g.OW}, x.dtype(), x.device());
  Tensor xc = x.contiguous();
  profile_count(static_cast<double>(x.numel()), static_cast<double>(x.nbytes() + out.nbytes()));
  dispatch("adaptive_avg_pool2d", x.device(),
           [&] { cpu::adaptive_avg_pool2d_forward(xc, out, g); },
           [&] { cuda::adaptive_avg_pool2d_forward(xc, out, g); });
  return out;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape) {
  check_x_shape("adaptive_avg_pool2d_backward", x_shape);
  EMBER_CHECK(grad_out.defined() && grad_out.dim() == 4,
              "adaptive_avg_pool2d_backward: grad_out must be (N, C, OH, OW), got ",
              grad_out.defined() ? grad_out.shape_str() : std::string("undefined"));
  Pool2dGeometry g{x_shape[0], x_shape[1], x_shape[2], x_shape[3], grad_out.size(2), grad_out.size(3), 0, 0, 0, 0, 0, 0};
  check_grad_out("adaptive_avg_pool2d_backward", grad_out, g);
  Tensor grad_x = empty(x_shape, grad_out.dtype(), grad_out.device());
  Tensor gc = grad_out.contiguous();
  profile_count(static_cast<double>(grad_x.numel()), static_cast<double>(grad_out.nbytes() + grad_x.nbytes()));
  dispatch("adaptive_avg_pool2d_backward", grad_out.device(),
           [&] { cpu::adaptive_avg_pool2d_backward(gc, grad_x, g); },
           [&] { cuda::adaptive_avg_pool2d_backward(gc, grad_x, g); });
  return grad_x;
}

}  // namespace ember
