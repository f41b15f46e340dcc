#include "autograd/functions/interpolate.h"

#include "tensor/profiler.h"

namespace ember {

Variable interpolate_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners) {
  ProfileScope prof("interpolate_bilinear", ProfileDirection::forward);
  Tensor out = ember::interpolate_bilinear(x.data(), out_h, out_w, align_corners);
  Shape x_shape = x.shape();
  return make_result(out, {x}, "interpolate_bilinear",
                     [x_shape, align_corners](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? interpolate_bilinear_backward(g, x_shape, align_corners) : Tensor()};
                     });
}

}  // namespace ember
