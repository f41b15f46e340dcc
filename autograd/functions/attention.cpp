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

Variable scaled_dot_product_attention_qkv(const Variable& qkv, const Tensor& mask, double scale) {
  ProfileScope prof("scaled_dot_product_attention", ProfileDirection::forward);
  Tensor packed = qkv.data();
  EMBER_CHECK(packed.dim() == 5 && packed.size(2) == 3, "scaled_dot_product_attention_qkv: qkv must be (B, N, 3, H, d), got ",
              packed.shape_str());
  Tensor heads = packed.permute({2, 0, 3, 1, 4});  // (3, B, H, N, d), a view
  Tensor tq = heads.select(0, 0), tk = heads.select(0, 1), tv = heads.select(0, 2);
  AttentionForward fwd = attention_forward(tq, tk, tv, mask, scale);
  Tensor out = fwd.out, lse = fwd.lse;
  return make_result(out, {qkv}, "scaled_dot_product_attention",
                     [tq, tk, tv, out, lse, mask, scale, packed](const Tensor& g, const std::vector<bool>& need) {
                       if (!need[0]) return std::vector<Tensor>{Tensor()};
                       AttentionGrads d = attention_backward(g, tq, tk, tv, out, lse, mask, scale);
                       Tensor grad = empty(packed.shape(), packed.dtype(), packed.device());  // (B, N, 3, H, d)
                       Tensor grad_heads = grad.permute({2, 0, 3, 1, 4});                    // (3, B, H, N, d)
                       grad_heads.select(0, 0).copy_(d.dq);
                       grad_heads.select(0, 1).copy_(d.dk);
                       grad_heads.select(0, 2).copy_(d.dv);
                       return std::vector<Tensor>{grad};
                     });
}

}  // namespace ember
