#include "autograd/functions/conv2d.h"

#include "tensor/ops/reduce.h"
#include "tensor/profiler.h"

namespace ember {

Variable conv2d(const Variable& x, const Variable& w, const Variable& bias, const Conv2dParams& p) {
  ProfileScope prof("conv2d", ProfileDirection::forward);
  EMBER_CHECK(x.defined() && w.defined(), "conv2d: input and weight must be defined");
  Tensor out = ember::conv2d(x.data(), w.data(), bias.defined() ? bias.data() : Tensor(), p);
  // Keep only what the backward will read: x for the weight gradient, w for the input gradient.
  Tensor saved_x = w.requires_grad() ? x.data() : Tensor();
  Tensor saved_w = x.requires_grad() ? w.data() : Tensor();
  Shape x_shape = x.shape(), w_shape = w.shape();
  return make_result(out, {x, w, bias}, "conv2d",
                     [saved_x, saved_w, x_shape, w_shape, p](const Tensor& g, const std::vector<bool>& need) {
                       Tensor gx, gw, gb;
                       if (need[0]) gx = conv2d_backward_input(g, saved_w, x_shape, p);
                       if (need[1]) gw = conv2d_backward_weight(g, saved_x, w_shape, p);
                       if (need[2]) gb = sum(g, {0, 2, 3});
                       return std::vector<Tensor>{gx, gw, gb};
                     });
}

}  // namespace ember
