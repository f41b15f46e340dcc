#include "autograd/functions/unary.h"

#include "tensor/ops/unary_backward.h"
#include "tensor/profiler.h"

namespace ember {

Variable unary(UnaryOp op, const Variable& x) {
  const char* name = unary_op_name(op);
  ProfileScope prof(name, ProfileDirection::forward);
  Tensor y = ember::unary(op, x.data());
  const UnaryGradReads reads = unary_grad_reads(op);
  Tensor saved_x = reads == UnaryGradReads::input ? x.data() : Tensor();
  Tensor saved_y = reads == UnaryGradReads::output ? y : Tensor();
  return make_result(y, {x}, name, [op, saved_x, saved_y](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? unary_backward(op, g, saved_x, saved_y) : Tensor()};
  });
}

}  // namespace ember
