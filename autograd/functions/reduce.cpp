#include "autograd/functions/reduce.h"

#include "tensor/ops/binary.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

// g has the reduction's output shape; returns it with the reduced dims restored as size 1 and
// broadcast (a stride-0 view, no copy) to the input's shape.
Tensor unreduce(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& dims) {
  return g.reshape(reduced_shape(in_shape, dims, /*keepdim=*/true)).expand(in_shape);
}

Variable extremum(const Variable& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  ProfileScope prof(name, ProfileDirection::forward);
  Tensor tx = x.data();
  Tensor out = is_max ? ember::max(tx, dims, keepdim) : ember::min(tx, dims, keepdim);
  std::vector<int64_t> d = normalize_dims(dims, tx.dim(), name);
  return make_result(out, {x}, name, [tx, out, d](const Tensor& g, const std::vector<bool>& need) {
    if (!need[0]) return std::vector<Tensor>{Tensor()};
    Shape keep = reduced_shape(tx.shape(), d, /*keepdim=*/true);
    Tensor o = out.reshape(keep);  // (..., 1, ...) broadcasts against x
    // hit = 1 where x equals the result; a NaN result (NaN propagates) picks out the NaNs.
    Tensor hit = eq(tx, o).to(tx.dtype());
    Tensor nan_hit = ember::mul(ne(tx, tx).to(tx.dtype()), ne(o, o).to(tx.dtype()));
    hit = ember::add(hit, nan_hit);  // disjoint: eq is false wherever x is NaN
    Tensor count = ember::sum(hit, d, /*keepdim=*/true);  // >= 1 for every output
    return std::vector<Tensor>{ember::mul(hit, ember::div(g.reshape(keep), count))};
  });
}

}  // namespace

Variable sum(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  ProfileScope prof("sum", ProfileDirection::forward);
  Shape in_shape = x.shape();
  std::vector<int64_t> d = normalize_dims(dims, x.dim(), "sum");
  return make_result(ember::sum(x.data(), d, keepdim), {x}, "sum",
                     [in_shape, d](const Tensor& g, const std::vector<bool>& need) {
                       if (!need[0]) return std::vector<Tensor>{Tensor()};
                       return std::vector<Tensor>{unreduce(g, in_shape, d).contiguous()};
                     });
}

Variable mean(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  ProfileScope prof("mean", ProfileDirection::forward);
  Shape in_shape = x.shape();
  std::vector<int64_t> d = normalize_dims(dims, x.dim(), "mean");
  const double n = static_cast<double>(reduced_count(in_shape, d));
  return make_result(ember::mean(x.data(), d, keepdim), {x}, "mean",
                     [in_shape, d, n](const Tensor& g, const std::vector<bool>& need) {
                       if (!need[0]) return std::vector<Tensor>{Tensor()};
                       return std::vector<Tensor>{unreduce(ember::div(g, n), in_shape, d)};  // scale the small tensor, then broadcast (a view)
                     });
}

Variable max(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(x, dims, keepdim, /*is_max=*/true);
}
Variable min(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(x, dims, keepdim, /*is_max=*/false);
}

Variable var(const Variable& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  ProfileScope prof("var", ProfileDirection::forward);
  Tensor tx = x.data();
  std::vector<int64_t> d = normalize_dims(dims, tx.dim(), "var");
  Tensor out = ember::var(tx, d, correction, keepdim);
  const double dof = static_cast<double>(reduced_count(tx.shape(), d) - correction);
  return make_result(out, {x}, "var", [tx, d, dof](const Tensor& g, const std::vector<bool>& need) {
    if (!need[0]) return std::vector<Tensor>{Tensor()};
    Shape keep = reduced_shape(tx.shape(), d, /*keepdim=*/true);
    Tensor centered = ember::sub(tx, ember::mean(tx, d, /*keepdim=*/true));  // x - mean
    Tensor scale = ember::mul(g.reshape(keep), 2.0 / dof);                   // 2 g / (R - correction)
    return std::vector<Tensor>{ember::mul(centered, scale)};
  });
}

}  // namespace ember
