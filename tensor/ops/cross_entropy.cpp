#include "tensor/ops/cross_entropy.h"

#include "tensor/dispatch.h"
#include "tensor/ops/binary.h"
#include "tensor/ops/cross_entropy_kernels.h"
#include "tensor/ops/reduce.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

DType acc_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

void check_inputs(const char* op, const Tensor& logits, const Tensor& target, double label_smoothing) {
  EMBER_CHECK(logits.defined() && target.defined(), op, ": undefined tensor");
  EMBER_CHECK(logits.dim() == 2, op, ": logits must be (N, C), got shape ", logits.shape_str());
  EMBER_CHECK(is_floating(logits.dtype()), op, ": logits dtype ", dtype_name(logits.dtype()),
              " not supported (expected a floating dtype)");
  EMBER_CHECK(logits.size(1) > 0, op, ": logits of shape ", logits.shape_str(), " have no classes");
  EMBER_CHECK(target.device() == logits.device(), op, ": target is on ", target.device().str(),
              " but logits are on ", logits.device().str());
  const Shape ids_shape{logits.size(0)};
  EMBER_CHECK(target.shape() == ids_shape || target.shape() == logits.shape(), op, ": target shape ",
              target.shape_str(), " does not fit logits ", logits.shape_str(), " (expected ", shape_str(ids_shape),
              " class ids or ", logits.shape_str(), " probabilities)");
  if (target.dim() == 1) {
    EMBER_CHECK(target.dtype() == DType::i64, op, ": class ids must be i64, got ", dtype_name(target.dtype()));
  } else {
    EMBER_CHECK(target.dtype() == logits.dtype(), op, ": probabilities have dtype ", dtype_name(target.dtype()),
                " but logits have ", dtype_name(logits.dtype()), " (expected one dtype)");
  }
  EMBER_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing ", label_smoothing,
              " out of range (expected 0 to 1)");
}

}  // namespace

std::string cross_entropy_bad_id_message(int64_t id, int64_t row, int64_t classes) {
  return make_error("cross_entropy: target class id ", id, " (row ", row, ") is out of range for ", classes,
                    " classes (expected 0 to ", classes - 1, ")")
      .what();
}

CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                                          Reduction reduction) {
  check_inputs("cross_entropy", logits, target, label_smoothing);
  const int64_t N = logits.size(0), C = logits.size(1);
  const DType acc = acc_dtype(logits.dtype());
  Tensor row_loss = empty({N}, acc, logits.device());  // (N,)
  Tensor lse = empty({N}, acc, logits.device());       // (N,)
  profile_count(6.0 * static_cast<double>(N * C), static_cast<double>(logits.nbytes() + target.nbytes()));
  int64_t bad_row = -1;
  if (N > 0) {
    bad_row = dispatch(
        "cross_entropy", logits.device(),
        [&] { return cpu::cross_entropy_forward(logits, target, label_smoothing, row_loss, lse); },
        [&] { return cuda::cross_entropy_forward(logits, target, label_smoothing, row_loss, lse); });
  }
  if (bad_row >= 0)  // the CPU's check; CUDA's reports later, without waiting (cross_entropy.h)
    throw Error(cross_entropy_bad_id_message(static_cast<int64_t>(target.select(0, bad_row).item()), bad_row, C));
  Tensor loss;
  switch (reduction) {
    case Reduction::none: loss = row_loss; break;
    case Reduction::sum: loss = sum(row_loss); break;
    case Reduction::mean: loss = div(sum(row_loss), static_cast<double>(N)); break;
  }
  return {loss.to(logits.dtype()), lse};
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing, Reduction reduction) {
  return cross_entropy_forward(logits, target, label_smoothing, reduction).loss;
}

Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                              double label_smoothing, Reduction reduction) {
  check_inputs("cross_entropy_backward", logits, target, label_smoothing);
  const int64_t N = logits.size(0), C = logits.size(1);
  const DType acc = acc_dtype(logits.dtype());
  const Shape loss_shape = reduction == Reduction::none ? Shape{N} : Shape{};
  EMBER_CHECK(grad.defined() && grad.shape() == loss_shape, "cross_entropy_backward: grad shape ",
              grad.defined() ? grad.shape_str() : "(undefined)", " does not match the loss shape ",
              shape_str(loss_shape));
  EMBER_CHECK(lse.defined() && lse.shape() == Shape{N} && lse.dtype() == acc && lse.device() == logits.device(),
              "cross_entropy_backward: lse must be the (N,) = [", N, "] ", dtype_name(acc),
              " tensor from cross_entropy_forward on ", logits.device().str());
  EMBER_CHECK(grad.device() == logits.device(), "cross_entropy_backward: grad is on ", grad.device().str(),
              " but logits are on ", logits.device().str());
  Tensor scale = grad.to(acc);  // g_n: (N,), or one value seen as (N,) with stride 0
  if (reduction == Reduction::mean) scale = div(scale, static_cast<double>(N));
  if (reduction != Reduction::none) scale = scale.reshape({1}).expand({N});
  Tensor dx = empty({N, C}, logits.dtype(), logits.device());  // (N, C)
  profile_count(5.0 * static_cast<double>(N * C), static_cast<double>(logits.nbytes() + target.nbytes() + dx.nbytes()));
  if (N == 0) return dx;
  dispatch("cross_entropy_backward", logits.device(),
           [&] { cpu::cross_entropy_backward(scale, logits, target, lse, label_smoothing, dx); },
           [&] { cuda::cross_entropy_backward(scale, logits, target, lse, label_smoothing, dx); });
  return dx;
}

}  // namespace ember
