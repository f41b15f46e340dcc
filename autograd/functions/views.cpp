#include "autograd/functions/views.h"

#include "tensor/profiler.h"

namespace ember {

namespace {

// Ops whose gradient is g reshaped back to the input's shape.
Variable reshaping(const Variable& x, Tensor out, const char* name) {
  Shape in_shape = x.shape();
  return make_result(std::move(out), {x}, name, [in_shape](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? g.reshape(in_shape) : Tensor()};
  });
}

// Ops that pick a sub-view of x: the gradient is zeros of x's shape with g written into the
// same sub-view, which `pick` makes from any tensor of x's shape.
template <class Pick>
Variable picking(const Variable& x, const char* name, Pick pick) {
  Shape in_shape = x.shape();
  return make_result(pick(x.data()), {x}, name, [in_shape, pick](const Tensor& g, const std::vector<bool>& need) {
    Tensor gx;
    if (need[0]) {
      gx = zeros(in_shape, g.dtype(), g.device());
      pick(gx).copy_(g);
    }
    return std::vector<Tensor>{gx};
  });
}

}  // namespace

Variable reshape(const Variable& x, const Shape& shape) {
  ProfileScope prof("reshape", ProfileDirection::forward);
  return reshaping(x, x.data().reshape(shape), "reshape");
}

Variable view(const Variable& x, const Shape& shape) {
  ProfileScope prof("view", ProfileDirection::forward);
  return reshaping(x, x.data().view(shape), "view");
}

Variable flatten(const Variable& x, int64_t start, int64_t end) {
  ProfileScope prof("flatten", ProfileDirection::forward);
  return reshaping(x, x.data().flatten(start, end), "flatten");
}

Variable squeeze(const Variable& x) {
  ProfileScope prof("squeeze", ProfileDirection::forward);
  return reshaping(x, x.data().squeeze(), "squeeze");
}

Variable squeeze(const Variable& x, int64_t dim) {
  ProfileScope prof("squeeze", ProfileDirection::forward);
  return reshaping(x, x.data().squeeze(dim), "squeeze");
}

Variable unsqueeze(const Variable& x, int64_t dim) {
  ProfileScope prof("unsqueeze", ProfileDirection::forward);
  return reshaping(x, x.data().unsqueeze(dim), "unsqueeze");
}

Variable permute(const Variable& x, const std::vector<int64_t>& dims) {
  ProfileScope prof("permute", ProfileDirection::forward);
  Tensor out = x.data().permute(dims);  // checks dims
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[normalize_dim(dims[i], x.dim(), "permute")] = static_cast<int64_t>(i);
  return make_result(out, {x}, "permute", [inverse](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? g.permute(inverse) : Tensor()};
  });
}

Variable transpose(const Variable& x, int64_t d0, int64_t d1) {
  ProfileScope prof("transpose", ProfileDirection::forward);
  return make_result(x.data().transpose(d0, d1), {x}, "transpose", [d0, d1](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? g.transpose(d0, d1) : Tensor()};
  });
}

Variable narrow(const Variable& x, int64_t dim, int64_t start, int64_t length) {
  ProfileScope prof("narrow", ProfileDirection::forward);
  return picking(x, "narrow", [dim, start, length](const Tensor& t) { return t.narrow(dim, start, length); });
}

Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  ProfileScope prof("slice", ProfileDirection::forward);
  return picking(x, "slice", [dim, start, end, step](const Tensor& t) { return t.slice(dim, start, end, step); });
}

Variable select(const Variable& x, int64_t dim, int64_t index) {
  ProfileScope prof("select", ProfileDirection::forward);
  return picking(x, "select", [dim, index](const Tensor& t) { return t.select(dim, index); });
}

Variable expand(const Variable& x, const Shape& shape) {
  ProfileScope prof("expand", ProfileDirection::forward);
  Shape in_shape = x.shape();
  return make_result(x.data().expand(shape), {x}, "expand", [in_shape](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to(g, in_shape) : Tensor()};
  });
}

Variable contiguous(const Variable& x) {
  ProfileScope prof("contiguous", ProfileDirection::forward);
  return make_result(x.data().contiguous(), {x}, "contiguous", [](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? g : Tensor()};
  });
}

Variable to(const Variable& x, DType dtype) {
  ProfileScope prof("to_dtype", ProfileDirection::forward);
  DType in_dtype = x.dtype();
  return make_result(x.data().to(dtype), {x}, "to_dtype", [in_dtype](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? g.to(in_dtype) : Tensor()};
  });
}

Variable to(const Variable& x, Device device) {
  ProfileScope prof("to_device", ProfileDirection::forward);
  Device in_device = x.device();
  return make_result(x.data().to(device), {x}, "to_device", [in_device](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? g.to(in_device) : Tensor()};
  });
}

}  // namespace ember
