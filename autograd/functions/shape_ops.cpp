#include "autograd/functions/shape_ops.h"

#include "autograd/functions/views.h"
#include "tensor/profiler.h"

namespace ember {

namespace {
std::vector<Tensor> tensors_of(const std::vector<Variable>& xs) {
  std::vector<Tensor> ts;
  ts.reserve(xs.size());
  for (const Variable& x : xs) ts.push_back(x.defined() ? x.data() : Tensor());
  return ts;
}
}  // namespace

Variable cat(const std::vector<Variable>& xs, int64_t dim) {
  ProfileScope prof("cat", ProfileDirection::forward);
  Tensor out = ember::cat(tensors_of(xs), dim);  // checks everything
  const int64_t d = normalize_dim(dim, out.dim(), "cat");
  std::vector<int64_t> sizes;
  for (const Variable& x : xs) sizes.push_back(x.size(d));
  return make_result(out, xs, "cat", [d, sizes](const Tensor& g, const std::vector<bool>& need) {
    std::vector<Tensor> grads(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (need[i]) grads[i] = g.narrow(d, offset, sizes[i]);
      offset += sizes[i];
    }
    return grads;
  });
}

Variable stack(const std::vector<Variable>& xs, int64_t dim) {
  ProfileScope prof("stack", ProfileDirection::forward);
  Tensor out = ember::stack(tensors_of(xs), dim);
  const int64_t d = normalize_dim(dim, out.dim(), "stack");
  return make_result(out, xs, "stack", [d](const Tensor& g, const std::vector<bool>& need) {
    std::vector<Tensor> grads(need.size());
    for (size_t i = 0; i < need.size(); ++i)
      if (need[i]) grads[i] = g.select(d, static_cast<int64_t>(i));
    return grads;
  });
}

std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t dim) {
  ember::split(x.data(), sizes, dim);  // validates sizes and dim (the views are cheap)
  const int64_t d = normalize_dim(dim, x.dim(), "split");
  std::vector<Variable> pieces;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    pieces.push_back(narrow(x, d, offset, s));
    offset += s;
  }
  return pieces;
}

std::vector<Variable> split(const Variable& x, int64_t split_size, int64_t dim) {
  EMBER_CHECK(x.defined() && x.dim() >= 1, "split: expected a tensor of at least one dim");
  return split(x, split_sizes(x.size(normalize_dim(dim, x.dim(), "split")), split_size, "split"), dim);
}

std::vector<Variable> chunk(const Variable& x, int64_t chunks, int64_t dim) {
  EMBER_CHECK(x.defined() && x.dim() >= 1, "chunk: expected a tensor of at least one dim");
  return split(x, chunk_sizes(x.size(normalize_dim(dim, x.dim(), "chunk")), chunks), dim);
}

Variable pad(const Variable& x, const std::vector<int64_t>& pads, double value) {
  ProfileScope prof("pad", ProfileDirection::forward);
  Tensor out = ember::pad(x.data(), pads, value);
  std::vector<int64_t> inverse(pads.size());
  for (size_t i = 0; i < pads.size(); ++i) inverse[i] = -pads[i];
  return make_result(out, {x}, "pad", [inverse](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? ember::pad(g, inverse, 0.0) : Tensor()};
  });
}

}  // namespace ember
