#include "autograd/functions/attention.h"

#include "tensor/profiler.h"

namespace ember {

Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v, const Tensor& mask,
                                      double scale) {
  ProfileScope prof("scaled_dot_product_attention", ProfileDirection::forward);
  Tensor tq = q.data(), tk = k.data(), tv = v.data();
  AttentionForward fwd = attention_forward(tq, tk, tv, mask, scale);
  Tensor out = fwd.out, lse = fwd.lse;
  return make_result(out, {q, k, v}, "scaled_dot_product_attention",
                     [tq, tk, tv, out, lse, mask, scale](const Tensor& g, const std::vector<bool>& need) {
                       AttentionGrads d = attention_backward(g, tq, tk, tv, out, lse, mask, scale);
                       return std::vector<Tensor>{need[0] ? d.dq : Tensor(), need[1] ? d.dk : Tensor(),
                                                  need[2] ? d.dv : Tensor()};
                     });
}

}  // namespace ember
