#include "nn/layers.h"

#include "ember/ember.h"
#include "nn/init.h"

namespace ember::nn {

Linear::Linear(int64_t in, int64_t out, const LinearOptions& o) : in_features(in), out_features(out) {
  EMBER_CHECK(in > 0 && out > 0, "Linear: features must be positive, got in=", in, " out=", out);
  Tensor w = empty({out, in});
  Tensor b = o.bias ? empty({out}) : Tensor();
  init::torch_default_(w, o.bias ? &b : nullptr, o.gen);
  weight = register_parameter("weight", w);
  if (o.bias) bias = register_parameter("bias", b);
}

Variable Linear::forward(const Variable& x) {
  EMBER_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear: input of shape ", shape_str(x.shape()),
              " does not end in ", in_features, " features");
  return linear(x, weight, bias);
}

void Linear::replace_with(const Linear& other) {
  EMBER_CHECK(bias.defined() == other.bias.defined(), "Linear::replace_with: one layer has a bias, the other not");
  weight.data() = other.weight.data().to(weight.device());
  weight.zero_grad();
  if (bias.defined()) {
    bias.data() = other.bias.data().to(bias.device());
    bias.zero_grad();
  }
  in_features = other.in_features;
  out_features = other.out_features;
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, const Conv2dOptions& o)
    : in_channels(in), out_channels(out), kernel_size(kernel), tf_same_padding(o.tf_same_padding) {
  const int64_t groups = o.groups;
  EMBER_CHECK(in > 0 && out > 0 && kernel > 0 && groups > 0 && in % groups == 0 && out % groups == 0,
              "Conv2d: invalid configuration in=", in, " out=", out, " kernel=", kernel, " groups=", groups,
              " (channels must be positive multiples of groups)");
  const int64_t padding = o.padding < 0 ? (kernel - 1) / 2 * o.dilation : o.padding;
  params = Conv2dParams::square(o.stride, padding, o.dilation, groups);
  Tensor w = empty({out, in / groups, kernel, kernel});
  Tensor b = o.bias ? empty({out}) : Tensor();
  init::torch_default_(w, o.bias ? &b : nullptr, o.gen);
  weight = register_parameter("weight", w);
  if (o.bias) bias = register_parameter("bias", b);
}

std::pair<int64_t, int64_t> tf_same_pads(int64_t size, int64_t kernel, int64_t stride, int64_t dilation) {
  int64_t out = (size + stride - 1) / stride;
  int64_t total = std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return {total / 2, total - total / 2};
}

Variable Conv2d::forward(const Variable& x) {
  if (!tf_same_padding) return conv2d(x, weight, bias, params);
  EMBER_CHECK(x.dim() == 4, "Conv2d: input must be (N, C, H, W), got ", shape_str(x.shape()));
  auto [top, bottom] = tf_same_pads(x.size(2), kernel_size, params.stride_h, params.dilation_h);
  auto [left, right] = tf_same_pads(x.size(3), kernel_size, params.stride_w, params.dilation_w);
  // The symmetric part is the convolution's own zero padding, the odd bottom/right pixel of a
  // stride-2 conv its extra padding: nothing is copied.
  Conv2dParams p = params;
  p.pad_h = top;
  p.pad_w = left;
  p.extra_pad_h = bottom - top;
  p.extra_pad_w = right - left;
  return conv2d(x, weight, bias, p);
}

BatchNorm2d::BatchNorm2d(int64_t channels, double eps_, double momentum_)
    : running_mean(register_buffer("running_mean", zeros({channels}))),
      running_var(register_buffer("running_var", ones({channels}))),
      num_batches_tracked(register_buffer("num_batches_tracked", zeros({}, DType::i64))),
      eps(eps_),
      momentum(momentum_) {
  weight = register_parameter("weight", ones({channels}));
  bias = register_parameter("bias", zeros({channels}));
}

Variable BatchNorm2d::forward(const Variable& x) { return forward_act(x, Act::identity); }

Variable BatchNorm2d::forward_act(const Variable& x, Act act) {
  BatchNormClamp clamp;
  if (act == Act::relu) clamp.lo = 0;
  if (act == Act::relu6) clamp = {0, 6};
  const bool fused = act == Act::identity || clamp.active();
  // Counted where it lives, without reading it back (on CUDA a read would stop the host in
  // every layer of every step).
  if (is_training() && !stats_frozen_) add_(num_batches_tracked, scalar_tensor(1, DType::i64, num_batches_tracked.device()));
  // Frozen stats in training: normalise with batch statistics but leave running stats alone.
  Tensor rm = stats_frozen_ ? Tensor() : running_mean, rv = stats_frozen_ ? Tensor() : running_var;
  Variable y = is_training() && sync_sum ? sync_batch_norm(x, weight, bias, rm, rv, momentum, eps, clamp, sync_sum)
                                         : batch_norm(x, weight, bias, rm, rv, is_training(), momentum, eps, clamp);
  return fused ? y : apply_act(act, y);
}

LayerNorm::LayerNorm(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", ones({dim}));
  bias = register_parameter("bias", zeros({dim}));
}

Variable LayerNorm::forward(const Variable& x) { return layer_norm(x, weight, bias, eps); }

Dropout::Dropout(double drop_probability, Generator* gen) : p(drop_probability), gen_(gen) {
  EMBER_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}
Variable Dropout::forward(const Variable& x) {
  if (!is_training() || p == 0) return x;
  return dropout(x, p, true, gen_);
}

DropPath::DropPath(double drop_probability, Generator* gen) : p(drop_probability), gen_(gen) {
  EMBER_CHECK(p >= 0 && p < 1, "DropPath: p must be in [0, 1), got ", p);
}
Variable DropPath::forward(const Variable& x) {
  if (!is_training() || p == 0) return x;
  return drop_path(x, p, true, gen_);
}

Act act_from_name(const std::string& n) {
  if (n == "swish") return Act::silu;
  if (auto op = unary_op_from_name(n)) return *op;
  std::string names;
  for (UnaryOp op : kUnaryOps) names += std::string(names.empty() ? "" : ", ") + unary_op_name(op);
  throw make_error("activation: unknown name '", n, "' (expected one of ", names, ", swish)");
}

Variable apply_act(Act act, const Variable& x) { return act == Act::identity ? x : unary(act, x); }

void set_batch_norm_stats_frozen(Module& module, bool frozen) {
  for (auto& [name, m] : module.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) bn->set_stats_frozen(frozen);
}

void set_batch_norm_eval(Module& module, bool eval, const std::string& prefix) {
  for (auto& [name, m] : module.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m); bn && Module::is_under(name, prefix))
      bn->train(!eval && module.is_training());
}

int64_t set_batch_norm_momentum(Module& module, double momentum) {
  EMBER_CHECK(momentum > 0 && momentum <= 1, "BatchNorm momentum must be in (0, 1], got ", momentum);
  int64_t n = 0;
  for (auto& [name, m] : module.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      bn->momentum = momentum;
      ++n;
    }
  return n;
}

}  // namespace ember::nn
