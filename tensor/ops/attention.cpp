#include "tensor/ops/attention.h"

#include <cmath>

#include "tensor/dispatch.h"
#include "tensor/ops/attention_kernels.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

DType lse_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  EMBER_CHECK(q.defined() && k.defined() && v.defined(), kOp, ": undefined tensor");
  EMBER_CHECK(q.dim() == 4, kOp, ": q must be (B, H, N, d), got ", q.shape_str());
  EMBER_CHECK(k.dim() == 4, kOp, ": k must be (B, H, M, d), got ", k.shape_str());
  EMBER_CHECK(v.dim() == 4, kOp, ": v must be (B, H, M, dv), got ", v.shape_str());
  EMBER_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), kOp, ": dtypes differ (q ", dtype_name(q.dtype()),
              ", k ", dtype_name(k.dtype()), ", v ", dtype_name(v.dtype()), ")");
  EMBER_CHECK(is_floating(q.dtype()), kOp, ": dtype ", dtype_name(q.dtype()), " not supported (expected a floating dtype)");
  EMBER_CHECK(q.device() == k.device() && q.device() == v.device(), kOp, ": tensors on different devices (q ",
              q.device().str(), ", k ", k.device().str(), ", v ", v.device().str(), ")");
  EMBER_CHECK(!q.device().is_cpu() || q.dtype() == DType::f32 || q.dtype() == DType::f64, kOp, ": dtype ",
              dtype_name(q.dtype()), " not supported on the CPU (expected f32 or f64)");
  EMBER_CHECK(q.size(0) == k.size(0) && q.size(1) == k.size(1) && k.size(0) == v.size(0) && k.size(1) == v.size(1),
              kOp, ": batch and head dims differ: q ", q.shape_str(), ", k ", k.shape_str(), ", v ", v.shape_str(),
              " (expected q (B, H, N, d), k (B, H, M, d), v (B, H, M, dv))");
  EMBER_CHECK(k.size(2) == v.size(2), kOp, ": k ", k.shape_str(), " and v ", v.shape_str(),
              " hold different numbers of keys");
  EMBER_CHECK(q.size(3) == k.size(3), kOp, ": head dims differ: q ", q.shape_str(), " has d = ", q.size(3), ", k ",
              k.shape_str(), " has d = ", k.size(3));
}

// The mask as the kernels take it: expanded to (B, H, N, M), bool or the lse dtype.
Tensor resolve_mask(const Tensor& mask, const Tensor& q, const Tensor& k) {
  if (!mask.defined()) return mask;
  const Shape full{q.size(0), q.size(1), q.size(2), k.size(2)};
  EMBER_CHECK(mask.dtype() == DType::boolean || is_floating(mask.dtype()), kOp, ": mask dtype ",
              dtype_name(mask.dtype()), " not supported (expected bool, true = attend, or an additive float mask)");
  EMBER_CHECK(mask.device() == q.device(), kOp, ": mask on ", mask.device().str(), " but q on ", q.device().str());
  bool fits = mask.dim() <= 4;
  for (int64_t d = 1; fits && d <= mask.dim(); ++d) {
    const int64_t s = mask.size(-d);
    fits = s == 1 || s == full[4 - d];
  }
  EMBER_CHECK(fits, kOp, ": mask ", mask.shape_str(), " does not broadcast to (B, H, N, M) = ", shape_str(full));
  Tensor m = mask.dtype() == DType::boolean ? mask : mask.to(lse_dtype(q.dtype()));
  return m.expand(full);
}

double resolve_scale(double scale, const Tensor& q) {
  return scale != 0 ? scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(q.size(3), 1)));
}

}  // namespace

AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale) {
  check_qkv(q, k, v);
  Tensor m = resolve_mask(mask, q, k);
  const double s = resolve_scale(scale, q);
  const double bhnm = static_cast<double>(q.size(0)) * q.size(1) * q.size(2) * k.size(2);
  profile_count(2.0 * bhnm * static_cast<double>(q.size(3) + v.size(3)),
                static_cast<double>(q.nbytes() + k.nbytes() + v.nbytes()) * 2);
  return dispatch(kOp, q.device(),
                  [&] { return cpu::attention_forward(q, k, v, m, s); },
                  [&] { return cuda::attention_forward(q, k, v, m, s); });
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale) {
  return attention_forward(q, k, v, mask, scale).out;
}

AttentionGrads attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& mask, double scale) {
  check_qkv(q, k, v);
  const Shape out_shape{q.size(0), q.size(1), q.size(2), v.size(3)};
  const Shape lse_shape{q.size(0), q.size(1), q.size(2)};
  EMBER_CHECK(grad_out.defined() && out.defined() && lse.defined(), kOp, " backward: undefined tensor");
  EMBER_CHECK(grad_out.shape() == out_shape && out.shape() == out_shape, kOp, " backward: grad_out ",
              grad_out.shape_str(), " and out ", out.shape_str(), " must be (B, H, N, dv) = ", shape_str(out_shape));
  EMBER_CHECK(lse.shape() == lse_shape, kOp, " backward: lse ", lse.shape_str(), " must be (B, H, N) = ",
              shape_str(lse_shape));
  EMBER_CHECK(grad_out.dtype() == q.dtype() && out.dtype() == q.dtype() && lse.dtype() == lse_dtype(q.dtype()), kOp,
              " backward: dtypes of grad_out (", dtype_name(grad_out.dtype()), "), out (", dtype_name(out.dtype()),
              ") or lse (", dtype_name(lse.dtype()), ") do not match q (", dtype_name(q.dtype()), ")");
  EMBER_CHECK(grad_out.device() == q.device() && out.device() == q.device() && lse.device() == q.device(), kOp,
              " backward: tensors on different devices");
  Tensor m = resolve_mask(mask, q, k);
  const double s = resolve_scale(scale, q);
  const double bhnm = static_cast<double>(q.size(0)) * q.size(1) * q.size(2) * k.size(2);
  profile_count(2.0 * bhnm * static_cast<double>(3 * q.size(3) + 2 * v.size(3)),
                static_cast<double>(q.nbytes() + k.nbytes() + v.nbytes() + out.nbytes()) * 2);
  return dispatch(kOp, q.device(),
                  [&] { return cpu::attention_backward(grad_out, q, k, v, out, lse, m, s); },
                  [&] { return cuda::attention_backward(grad_out, q, k, v, out, lse, m, s); });
}

}  // namespace ember
