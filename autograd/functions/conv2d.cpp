#include "autograd/functions/conv2d.h"

#include "tensor/ops/reduce.h"
#include "tensor/profiler.h"

namespace ember {

namespace {
// The profile row and node name: "conv2d_1x1", "conv2d_depthwise" or "conv2d" (dense k×k).
const char* conv2d_kind(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p) {
  if (w_shape.size() == 4 && w_shape[2] == 1 && w_shape[3] == 1) return "conv2d_1x1";
  if (x_shape.size() == 4 && p.groups > 1 && p.groups == x_shape[1]) return "conv2d_depthwise";
  return "conv2d";
}
}  // namespace

Variable conv2d(const Variable& x, const Variable& w, const Variable& bias, const Conv2dParams& p) {
  EMBER_CHECK(x.defined() && w.defined(), "conv2d: input and weight must be defined");
  const char* kind = conv2d_kind(x.shape(), w.shape(), p);
  ProfileScope prof(kind, ProfileDirection::forward);
  Tensor out = ember::conv2d(x.data(), w.data(), bias.defined() ? bias.data() : Tensor(), p);
  // Keep only what the backward will read: x for the weight gradient, w for the input gradient.
  Tensor saved_x = w.requires_grad() ? x.data() : Tensor();
  Tensor saved_w = x.requires_grad() ? w.data() : Tensor();
  Shape x_shape = x.shape(), w_shape = w.shape();
  return make_result(out, {x, w, bias}, kind,
                     [saved_x, saved_w, x_shape, w_shape, p](const Tensor& g, const std::vector<bool>& need) {
                       Tensor gx, gw, gb;
                       if (need[0]) gx = conv2d_backward_input(g, saved_w, x_shape, p);
                       if (need[1]) gw = conv2d_backward_weight(g, saved_x, w_shape, p);
                       if (need[2]) gb = sum(g, {0, 2, 3});
                       return std::vector<Tensor>{gx, gw, gb};
                     });
}

}  // namespace ember
