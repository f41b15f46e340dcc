#include "autograd/functions/matmul.h"

#include "tensor/ops/reduce.h"
#include "tensor/profiler.h"

namespace ember {

Variable matmul(const Variable& a, const Variable& b) {
  ProfileScope prof("matmul", ProfileDirection::forward);
  Tensor ta = a.data(), tb = b.data();
  return make_result(ember::matmul(ta, tb), {a, b}, "matmul", [ta, tb](const Tensor& g, const std::vector<bool>& need) {
    // Work with the promoted operands a2 (..., M, K), b2 (..., K, N) and g2 (..., M, N).
    Tensor a2 = ta.dim() == 1 ? ta.unsqueeze(0) : ta;
    Tensor b2 = tb.dim() == 1 ? tb.unsqueeze(1) : tb;
    Tensor g2 = g;
    if (tb.dim() == 1) g2 = g2.unsqueeze(g2.dim());      // (..., M) -> (..., M, 1)
    if (ta.dim() == 1) g2 = g2.unsqueeze(g2.dim() - 1);  // (..., N) -> (..., 1, N)
    Tensor ga, gb;
    if (need[0]) ga = sum_to(ember::matmul(g2, b2.transpose(-2, -1)), a2.shape()).reshape(ta.shape());  // g·bᵀ
    if (need[1]) {
      const int64_t k = b2.size(-2), n = b2.size(-1);
      if (b2.dim() == 2 && a2.dim() > 2) {
        // b shared by every batch: Σ_β a_βᵀ g_β is one product over the stacked rows.
        const int64_t rows = shape_numel(Shape(a2.shape().begin(), a2.shape().end() - 1));
        Tensor rows_a = a2.reshape({rows, k}), rows_g = g2.reshape({rows, n});
        gb = ember::matmul(rows_a.t(), rows_g);
      } else {
        gb = sum_to(ember::matmul(a2.transpose(-2, -1), g2), b2.shape());  // aᵀ·g
      }
      gb = gb.reshape(tb.shape());
    }
    return std::vector<Tensor>{ga, gb};
  });
}

Variable linear(const Variable& x, const Variable& w, const Variable& bias) {
  ProfileScope prof("linear", ProfileDirection::forward);
  Tensor tx = x.data(), tw = w.data();
  Tensor out = ember::linear(tx, tw, bias.defined() ? bias.data() : Tensor());
  return make_result(out, {x, w, bias}, "linear", [tx, tw](const Tensor& g, const std::vector<bool>& need) {
    const int64_t in = tw.size(1), out_features = tw.size(0);
    const int64_t rows = shape_numel(Shape(tx.shape().begin(), tx.shape().end() - 1));
    Tensor g2 = g.reshape({rows, out_features});  // (rows, out)
    Tensor gx, gw, gbias;
    if (need[0]) gx = ember::matmul(g2, tw).reshape(tx.shape());                   // g·w      (rows, in)
    if (need[1]) gw = ember::matmul(g2.t(), tx.reshape({rows, in}));              // gᵀ·x     (out, in)
    if (need[2]) gbias = sum(g2, {0});                                             // Σ_rows g (out)
    return std::vector<Tensor>{gx, gw, gbias};
  });
}

}  // namespace ember
