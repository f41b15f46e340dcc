#include "autograd/functions/clamp.h"

#include "tensor/profiler.h"

namespace ember {

Variable clamp(const Variable& x, double lo, double hi) {
  ProfileScope prof("clamp", ProfileDirection::forward);
  Tensor tx = x.data();
  return make_result(ember::clamp(tx, lo, hi), {x}, "clamp", [tx, lo, hi](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? clamp_backward(g, tx, lo, hi) : Tensor()};
  });
}

}  // namespace ember
