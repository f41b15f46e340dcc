#include "tensor/ops/reduce.h"

#include "tensor/dispatch.h"
#include "tensor/ops/binary.h"
#include "tensor/ops/reduce_kernels.h"
#include "tensor/profiler.h"

namespace ember {

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  auto d = normalize_dims(dims, static_cast<int64_t>(shape.size()), "reduce");
  Shape out;
  size_t k = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (k < d.size() && d[k] == i) {
      if (keepdim) out.push_back(1);
      ++k;
    } else {
      out.push_back(shape[i]);
    }
  }
  return out;
}

int64_t reduced_count(const Shape& shape, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : normalize_dims(dims, static_cast<int64_t>(shape.size()), "reduce")) n *= shape[d];
  return n;
}

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const char* name = reduce_op_name(op);
  EMBER_CHECK(x.defined(), name, ": undefined tensor");
  auto d = normalize_dims(dims, x.dim(), name);
  ReducePlan plan;
  size_t k = 0;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (k < d.size() && d[k] == i) {
      plan.red_sizes.push_back(x.size(i));
      plan.red_strides.push_back(x.stride(i));
      plan.reduced *= x.size(i);
      ++k;
    } else {
      plan.kept_sizes.push_back(x.size(i));
      plan.kept_strides.push_back(x.stride(i));
      plan.outputs *= x.size(i);
    }
  }
  // Merge neighbouring dims that are contiguous with each other (H, W of an NCHW tensor become
  // one run of H·W), so the kernels walk long unit-stride runs. Arg ops keep the reduced dims
  // as they are: merging preserves the flattened index order, so it is safe for them too.
  auto coalesce = [](Shape& sizes, Shape& strides) {
    Shape ns, nt;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] == 1) continue;
      if (!ns.empty() && nt.back() == strides[i] * sizes[i]) {
        ns.back() *= sizes[i];
        nt.back() = strides[i];
      } else {
        ns.push_back(sizes[i]);
        nt.push_back(strides[i]);
      }
    }
    sizes = ns;
    strides = nt;
  };
  coalesce(plan.kept_sizes, plan.kept_strides);
  coalesce(plan.red_sizes, plan.red_strides);
  bool is_arg = reduce_op_gives_index(op);
  EMBER_CHECK(plan.reduced > 0 || op == ReduceOp::sum, name, ": cannot reduce over an empty dim (shape ",
              x.shape_str(), ")");
  EMBER_CHECK(x.dtype() != DType::boolean || op == ReduceOp::sum, name, ": dtype bool not supported");
  DType out_dtype = is_arg ? DType::i64 : (x.dtype() == DType::boolean ? DType::i64 : x.dtype());
  Tensor out = empty(reduced_shape(x.shape(), d, keepdim), out_dtype, x.device());
  profile_count(static_cast<double>(x.numel()), static_cast<double>(x.nbytes() + out.nbytes()));
  dispatch(name, x.device(),
           [&] { cpu::reduce(op, x, out, plan); },
           [&] { cuda::reduce(op, x, out, plan); });
  return out;
}

Tensor mul_sum_to(const Tensor& a, const Tensor& b, const Shape& shape) {
  EMBER_CHECK(a.shape() == b.shape(), "mul_sum_to: shapes ", a.shape_str(), " and ", b.shape_str(), " differ");
  EMBER_CHECK(a.dtype() == b.dtype() && a.device() == b.device(), "mul_sum_to: operands differ in dtype or device");
  // rows = product of the leading dims kept, len = product of the trailing dims summed
  size_t lead = 0;
  bool fast = a.device().is_cpu() && (a.dtype() == DType::f32 || a.dtype() == DType::f64) && a.is_contiguous() &&
              b.is_contiguous() && shape.size() == a.shape().size();
  if (fast) {
    while (lead < shape.size() && shape[lead] == a.shape()[lead]) ++lead;
    for (size_t i = lead; i < shape.size(); ++i) fast = fast && shape[i] == 1;
  }
  if (!fast || lead == 0 || lead == shape.size()) {
    Tensor prod = mul(a, b);
    std::vector<int64_t> dims;
    const int64_t extra = prod.dim() - static_cast<int64_t>(shape.size());
    for (int64_t d = 0; d < prod.dim(); ++d)
      if (d < extra || (shape[d - extra] == 1 && prod.size(d) != 1)) dims.push_back(d);
    return (dims.empty() ? prod : sum(prod, dims, true)).reshape(shape);
  }
  int64_t rows = 1, len = 1;
  for (size_t i = 0; i < lead; ++i) rows *= a.shape()[i];
  for (size_t i = lead; i < a.shape().size(); ++i) len *= a.shape()[i];
  Tensor out = empty(shape, a.dtype(), a.device());
  profile_count(2.0 * static_cast<double>(a.numel()), static_cast<double>(a.nbytes() + b.nbytes() + out.nbytes()));
  cpu::dot_rows(a, b, out, rows, len);
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  EMBER_CHECK(x.defined() && is_floating(x.dtype()), "mean: expected a floating tensor");
  int64_t n = reduced_count(x.shape(), dims);
  EMBER_CHECK(n > 0, "mean: cannot average over an empty dim (shape ", x.shape_str(), ")");
  return div(sum(x, dims, keepdim), static_cast<double>(n));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  EMBER_CHECK(x.defined() && is_floating(x.dtype()), "var: expected a floating tensor");
  int64_t n = reduced_count(x.shape(), dims);
  EMBER_CHECK(n - correction > 0, "var: ", n, " element(s) with correction ", correction,
              " leaves no degrees of freedom");
  Tensor centered = sub(x, mean(x, dims, /*keepdim=*/true));
  return div(sum(mul(centered, centered), dims, keepdim), static_cast<double>(n - correction));
}

}  // namespace ember
