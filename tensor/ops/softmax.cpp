#include "tensor/ops/softmax.h"

#include <limits>

#include "tensor/dispatch.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax_kernels.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

const char* mode_name(SoftmaxMode mode) {
  switch (mode) {
    case SoftmaxMode::softmax: return "softmax";
    case SoftmaxMode::log_softmax: return "log_softmax";
    case SoftmaxMode::logsumexp: return "logsumexp";
  }
  return "?";
}

// Rows along dim d of operands that all have ops[0]'s shape (an output of logsumexp is passed
// as a view with stride 0 along d). `contiguous` is the caller's promise for the band path.
SoftmaxPlan make_plan(const std::vector<const Tensor*>& ops, int64_t d, bool contiguous) {
  const Tensor& ref = *ops[0];
  SoftmaxPlan p;
  p.operands = static_cast<int>(ops.size());
  p.C = ref.size(d);
  for (int64_t j = 0; j < ref.dim(); ++j) {
    if (j == d) continue;
    p.rows *= ref.size(j);
    if (j < d) p.outer *= ref.size(j);
    else p.inner *= ref.size(j);
    if (ref.size(j) == 1) continue;
    bool merge = !p.kept_sizes.empty();
    for (int k = 0; k < p.operands && merge; ++k)
      merge = p.kept_strides[k].back() == ops[k]->stride(j) * ref.size(j);
    if (merge) {
      p.kept_sizes.back() *= ref.size(j);
      for (int k = 0; k < p.operands; ++k) p.kept_strides[k].back() = ops[k]->stride(j);
    } else {
      p.kept_sizes.push_back(ref.size(j));
      for (int k = 0; k < p.operands; ++k) p.kept_strides[k].push_back(ops[k]->stride(j));
    }
  }
  for (int k = 0; k < p.operands; ++k) p.dim_stride[k] = ops[k]->stride(d);
  p.contiguous = contiguous;
  return p;
}

Tensor forward(SoftmaxMode mode, const Tensor& x_in, int64_t dim, bool keepdim) {
  const char* name = mode_name(mode);
  EMBER_CHECK(x_in.defined(), name, ": undefined tensor");
  EMBER_CHECK(is_floating(x_in.dtype()), name, ": dtype ", dtype_name(x_in.dtype()),
              " not supported (expected a floating dtype)");
  const bool scalar = x_in.dim() == 0;
  const Tensor x = scalar ? x_in.reshape({1}) : x_in;  // a 0-d tensor is one row of one element
  const int64_t d = normalize_dim(dim, x.dim(), name);
  Tensor out, out_view;  // out_view: out seen with x's shape (stride 0 along d for logsumexp)
  if (mode == SoftmaxMode::logsumexp) {
    out = empty(reduced_shape(x.shape(), {d}, /*keepdim=*/true), x.dtype(), x.device());
    out_view = out.expand(x.shape());
  } else {
    out = out_view = empty(x.shape(), x.dtype(), x.device());
  }
  auto finish = [&](Tensor t) {
    if (scalar) return t.reshape({});
    if (mode == SoftmaxMode::logsumexp && !keepdim) return t.squeeze(d);
    return t;
  };
  if (x.numel() == 0) {
    if (mode == SoftmaxMode::logsumexp) out.fill_(-std::numeric_limits<double>::infinity());  // log Σ∅ = -inf
    return finish(out);
  }
  SoftmaxPlan plan = make_plan({&x, &out_view}, d, x.is_contiguous());
  profile_count(5.0 * static_cast<double>(x.numel()), static_cast<double>(x.nbytes() + out.nbytes()));
  dispatch(name, x.device(),
           [&] { cpu::softmax_forward(mode, x, out, plan); },
           [&] { cuda::softmax_forward(mode, x, out, plan); });
  return finish(out);
}

Tensor backward(SoftmaxMode mode, const Tensor& grad_in, const Tensor& y_in, int64_t dim) {
  const char* name = mode == SoftmaxMode::softmax ? "softmax_backward" : "log_softmax_backward";
  EMBER_CHECK(grad_in.defined() && y_in.defined(), name, ": undefined tensor");
  EMBER_CHECK(grad_in.shape() == y_in.shape(), name, ": grad shape ", grad_in.shape_str(),
              " does not match the output's shape ", y_in.shape_str());
  EMBER_CHECK(grad_in.dtype() == y_in.dtype(), name, ": grad has dtype ", dtype_name(grad_in.dtype()),
              " but the output has ", dtype_name(y_in.dtype()), " (expected one dtype)");
  EMBER_CHECK(grad_in.device() == y_in.device(), name, ": grad is on ", grad_in.device().str(),
              " but the output is on ", y_in.device().str());
  EMBER_CHECK(is_floating(y_in.dtype()), name, ": dtype ", dtype_name(y_in.dtype()),
              " not supported (expected a floating dtype)");
  const bool scalar = y_in.dim() == 0;
  const Tensor grad = scalar ? grad_in.reshape({1}) : grad_in;
  const Tensor y = scalar ? y_in.reshape({1}) : y_in;
  const int64_t d = normalize_dim(dim, y.dim(), name);
  Tensor dx = empty(y.shape(), y.dtype(), y.device());
  if (y.numel() > 0) {
    SoftmaxPlan plan = make_plan({&grad, &y, &dx}, d, grad.is_contiguous() && y.is_contiguous());
    profile_count(4.0 * static_cast<double>(y.numel()), static_cast<double>(3 * y.nbytes()));
    dispatch(name, y.device(),
             [&] { cpu::softmax_backward(mode, grad, y, dx, plan); },
             [&] { cuda::softmax_backward(mode, grad, y, dx, plan); });
  }
  return scalar ? dx.reshape({}) : dx;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return forward(SoftmaxMode::softmax, x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return forward(SoftmaxMode::log_softmax, x, dim, false); }
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
  return forward(SoftmaxMode::logsumexp, x, dim, keepdim);
}
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim) {
  return backward(SoftmaxMode::softmax, grad, y, dim);
}
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim) {
  return backward(SoftmaxMode::log_softmax, grad, y, dim);
}

}  // namespace ember
