#include "autograd/functions/batch_norm.h"

#include "tensor/profiler.h"

namespace ember {

Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor running_mean,
                    Tensor running_var, bool training, double momentum, double eps, const BatchNormClamp& clamp) {
  ProfileScope prof("batch_norm", ProfileDirection::forward);
  Tensor tx = x.data();
  Tensor tw = weight.defined() ? weight.data() : Tensor();
  Tensor tb = bias.defined() ? bias.data() : Tensor();
  BatchNormResult r = ember::batch_norm(tx, tw, tb, running_mean, running_var, training, momentum, eps, clamp);
  Tensor tb_saved = clamp.active() ? tb : Tensor();  // β only matters to the clamp's mask
  Tensor mean = r.save_mean, invstd = r.save_invstd;
  DType w_dtype = tw.defined() ? tw.dtype() : tx.dtype(), b_dtype = tb.defined() ? tb.dtype() : tx.dtype();
  return make_result(r.out, {x, weight, bias}, "batch_norm",
                     [tx, tw, tb_saved, mean, invstd, training, clamp, w_dtype, b_dtype](const Tensor& g,
                                                                                          const std::vector<bool>& need) {
                       BatchNormGrads d = batch_norm_backward(g, tx, tw, mean, invstd, training, tb_saved, clamp);
                       return std::vector<Tensor>{need[0] ? d.dx : Tensor(), need[1] ? d.dweight.to(w_dtype) : Tensor(),
                                                  need[2] ? d.dbias.to(b_dtype) : Tensor()};
                     });
}

}  // namespace ember
