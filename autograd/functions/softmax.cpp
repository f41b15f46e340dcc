#include "autograd/functions/softmax.h"

#include "tensor/ops/binary.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/unary.h"
#include "tensor/profiler.h"

namespace ember {

Variable softmax(const Variable& x, int64_t dim) {
  ProfileScope prof("softmax", ProfileDirection::forward);
  Tensor y = ember::softmax(x.data(), dim);
  return make_result(y, {x}, "softmax", [y, dim](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? softmax_backward(g, y, dim) : Tensor()};
  });
}

Variable log_softmax(const Variable& x, int64_t dim) {
  ProfileScope prof("log_softmax", ProfileDirection::forward);
  Tensor y = ember::log_softmax(x.data(), dim);
  return make_result(y, {x}, "log_softmax", [y, dim](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? log_softmax_backward(g, y, dim) : Tensor()};
  });
}

Variable logsumexp(const Variable& x, int64_t dim, bool keepdim) {
  ProfileScope prof("logsumexp", ProfileDirection::forward);
  Tensor tx = x.data();
  Tensor lse = ember::logsumexp(tx, dim, /*keepdim=*/true);  // (..., 1, ...) broadcasts against x
  Tensor out = keepdim || tx.dim() == 0 ? lse : lse.squeeze(normalize_dim(dim, tx.dim(), "logsumexp"));
  return make_result(out, {x}, "logsumexp", [tx, lse](const Tensor& g, const std::vector<bool>& need) {
    if (!need[0]) return std::vector<Tensor>{Tensor()};
    Tensor p = exp(ember::sub(tx, lse));  // softmax(x)
    return std::vector<Tensor>{ember::mul(p, g.reshape(lse.shape()))};
  });
}

}  // namespace ember
