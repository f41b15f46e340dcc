#include "autograd/functions/batch_norm.h"

#include <algorithm>

#include "tensor/ops/binary.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape_ops.h"
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

namespace {

// (C) as (1, C, 1): a per-channel tensor broadcast over x viewed as (N, C, L).
Tensor per_channel(const Tensor& c, const Tensor& like) {
  return c.to(like.dtype()).to(like.device()).reshape({1, c.numel(), 1});
}

}  // namespace

Variable sync_batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor running_mean,
                         Tensor running_var, double momentum, double eps, const BatchNormClamp& clamp,
                         const ChannelSum& all_sum) {
  ProfileScope prof("sync_batch_norm", ProfileDirection::forward);
  Tensor tx = x.data();
  EMBER_CHECK(tx.dim() >= 2, "sync_batch_norm: x has shape ", tx.shape_str(), ", expected (N, C) or (N, C, *)");
  EMBER_CHECK(all_sum != nullptr, "sync_batch_norm: no channel sum given");
  const int64_t N = tx.size(0), C = tx.size(1), L = N * C > 0 ? tx.numel() / (N * C) : 0;
  Tensor x3 = tx.contiguous().reshape({N, C, L});  // (N, C, L)

  // μ: the sum over every rank's values of each channel, and their count, in one all_reduce.
  Tensor s1 = cat({sum(x3, {0, 2}).cpu().to(DType::f64), full({1}, static_cast<double>(N * L), DType::f64)});  // (C+1)
  all_sum(s1);
  const double M = s1.to_vector<double>()[C];
  EMBER_CHECK(M > 1, "sync_batch_norm: training needs more than one value per channel over all ranks, got ", M,
              " (x of shape ", tx.shape_str(), " here)");
  Tensor mean = div(s1.narrow(0, 0, C), M);  // (C) f64
  // σ²: the sum of squared deviations from the global μ (two passes: no cancellation).
  Tensor d = sub(x3, per_channel(mean, tx));
  Tensor s2 = mul_sum_to(d, d, {1, C, 1}).reshape({C}).cpu().to(DType::f64).contiguous();  // (C)
  all_sum(s2);
  Tensor var = div(s2, M);  // (C) f64, biased

  // y from batch_norm's eval path with the global statistics (the clamp fused as there).
  Tensor tw = weight.defined() ? weight.data() : Tensor();
  Tensor tb = bias.defined() ? bias.data() : Tensor();
  BatchNormResult r = ember::batch_norm(tx, tw, tb, mean.to(tx.dtype()).to(tx.device()),
                                        var.to(tx.dtype()).to(tx.device()), /*training=*/false, 0.0, eps, clamp);
  if (running_mean.defined()) {  // running ← (1 − m)·running + m·batch, the variance unbiased over M
    running_mean.copy_(add(mul(running_mean, 1 - momentum), mul(mean.to(running_mean.dtype()).to(running_mean.device()), momentum)));
    running_var.copy_(add(mul(running_var, 1 - momentum),
                          mul(var.to(running_var.dtype()).to(running_var.device()), momentum * M / (M - 1))));
  }

  Tensor tb_saved = clamp.active() ? tb : Tensor();
  Tensor save_mean = r.save_mean, invstd = r.save_invstd;
  DType w_dtype = tw.defined() ? tw.dtype() : tx.dtype(), b_dtype = tb.defined() ? tb.dtype() : tx.dtype();
  return make_result(
      r.out, {x, weight, bias}, "sync_batch_norm",
      [tx, tw, tb_saved, save_mean, invstd, clamp, w_dtype, b_dtype, M, all_sum](const Tensor& g,
                                                                                   const std::vector<bool>& need) {
        // The eval backward gives γ r g' and this rank's dγ = Σ g' x̂, dβ = Σ g'.
        BatchNormGrads d = batch_norm_backward(g, tx, tw, save_mean, invstd, /*training=*/false, tb_saved, clamp);
        Tensor dx;
        if (need[0]) {
          const int64_t N = tx.size(0), C = tx.size(1), L = tx.numel() / std::max<int64_t>(N * C, 1);
          Tensor sums = cat({d.dweight.cpu().to(DType::f64), d.dbias.cpu().to(DType::f64)}).contiguous();  // (2C)
          all_sum(sums);
          // dx = γ r g' − (x − μ)·a − b,  a = γ r² Σdγ / M,  b = γ r Σdβ / M   (per channel)
          Tensor r64 = invstd.cpu().to(DType::f64);
          Tensor gr = tw.defined() ? mul(r64, tw.cpu().to(DType::f64)) : r64;  // γ r
          Tensor a = div(mul(mul(gr, r64), sums.narrow(0, 0, C)), M);
          Tensor b = div(mul(gr, sums.narrow(0, C, C)), M);
          Tensor x3 = tx.contiguous().reshape({N, C, L});
          Tensor dx3 = d.dx.reshape({N, C, L});
          dx = sub(sub(dx3, mul(sub(x3, per_channel(save_mean, tx)), per_channel(a, tx))), per_channel(b, tx))
                   .reshape(tx.shape());
        }
        return std::vector<Tensor>{dx, need[1] ? d.dweight.to(w_dtype) : Tensor(),
                                   need[2] ? d.dbias.to(b_dtype) : Tensor()};
      });
}

}  // namespace ember
