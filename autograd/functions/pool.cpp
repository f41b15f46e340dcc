#include "autograd/functions/pool.h"

#include "tensor/profiler.h"

namespace ember {

Variable max_pool2d(const Variable& x, Size2d kernel, Size2d stride, Size2d padding) {
  ProfileScope prof("max_pool2d", ProfileDirection::forward);
  MaxPoolResult r = max_pool2d_with_indices(x.data(), kernel, stride, padding);
  Tensor indices = r.indices;
  Shape x_shape = x.shape();
  return make_result(r.out, {x}, "max_pool2d", [indices, x_shape](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? max_pool2d_backward(g, indices, x_shape) : Tensor()};
  });
}

Variable avg_pool2d(const Variable& x, Size2d kernel, Size2d stride, Size2d padding) {
  ProfileScope prof("avg_pool2d", ProfileDirection::forward);
  Tensor out = ember::avg_pool2d(x.data(), kernel, stride, padding);
  Shape x_shape = x.shape();
  return make_result(out, {x}, "avg_pool2d",
                     [x_shape, kernel, stride, padding](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? avg_pool2d_backward(g, x_shape, kernel, stride, padding) : Tensor()};
                     });
}

Variable adaptive_avg_pool2d(const Variable& x, int64_t out_h, int64_t out_w) {
  ProfileScope prof("adaptive_avg_pool2d", ProfileDirection::forward);
  Tensor out = ember::adaptive_avg_pool2d(x.data(), out_h, out_w);
  Shape x_shape = x.shape();
  return make_result(out, {x}, "adaptive_avg_pool2d", [x_shape](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? adaptive_avg_pool2d_backward(g, x_shape) : Tensor()};
  });
}

}  // namespace ember
