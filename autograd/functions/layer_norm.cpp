#include "autograd/functions/layer_norm.h"

#include "tensor/profiler.h"

namespace ember {

Variable layer_norm(const Variable& x, const Variable& weight, const Variable& bias, double eps) {
  ProfileScope prof("layer_norm", ProfileDirection::forward);
  Tensor tx = x.data();
  Tensor tw = weight.defined() ? weight.data() : Tensor();
  Tensor tb = bias.defined() ? bias.data() : Tensor();
  LayerNormResult r = ember::layer_norm(tx, tw, tb, eps);
  Tensor mean = r.mean, rstd = r.rstd;
  DType w_dtype = tw.defined() ? tw.dtype() : tx.dtype(), b_dtype = tb.defined() ? tb.dtype() : tx.dtype();
  return make_result(r.out, {x, weight, bias}, "layer_norm",
                     [tx, tw, mean, rstd, w_dtype, b_dtype](const Tensor& g, const std::vector<bool>& need) {
                       LayerNormGrads d = layer_norm_backward(g, tx, tw, mean, rstd);
                       return std::vector<Tensor>{need[0] ? d.dx : Tensor(), need[1] ? d.dweight.to(w_dtype) : Tensor(),
                                                  need[2] ? d.dbias.to(b_dtype) : Tensor()};
                     });
}

}  // namespace ember
