// The basic layers. Each owns its parameters (registered under timm's names: weight, bias,
// running_mean, ...) and applies the differentiable op of the same name.
//
//   Linear       y = x·Wᵀ + b                 W (out, in), b (out); x (..., in)
//   Conv2d       y = conv2d(x, W) + b         W (out, in/groups, k, k); x (N, C, H, W)
//                with tf_same_padding: TensorFlow's "SAME" padding, computed from the input size:
//                  total = max((⌈H/s⌉ − 1)·s + (k − 1)·d + 1 − H, 0),  top = ⌊total/2⌋,
//                  bottom = total − top (the odd pixel goes to the bottom/right, as TF does)
//   BatchNorm2d  y = γ·(x − μ)/√(σ² + ε) + β  batch stats in training (running stats updated
//                                             unless frozen), running stats in eval; with
//                                             sync_sum, the batch stats of every rank's batch
//   LayerNorm    same over the last dim, per row
//   Dropout      zero with probability p, scale 1/(1 − p), training only
//   DropPath     drop whole samples with probability p (stochastic depth), training only
//   Activation   any UnaryOp (Act is UnaryOp): relu, relu6, silu, gelu, gelu_tanh, sigmoid, tanh,
//                identity, ... (tensor/ops/unary.h lists them with their math)
#pragma once
#include <memory>
#include <string>

#include "autograd/functions/batch_norm.h"
#include "nn/module.h"
#include "tensor/ops/conv2d.h"
#include "tensor/ops/random.h"
#include "tensor/ops/unary.h"

namespace ember::nn {

// Each layer with more than its sizes to set takes them by name:
//   Conv2d(3, dim, patch, {.stride = patch, .padding = 0, .bias = true, .gen = gen})
// Fields left out keep the defaults written below. `gen` draws the initial weights (nullptr:
// the default generator).
struct LinearOptions {
  bool bias = true;
  Generator* gen = nullptr;
};

class Linear : public UnaryModule {
 public:
  Linear(int64_t in, int64_t out, const LinearOptions& options = {});
  Variable forward(const Variable& x) override;
  // Takes `other`'s weights (and shape) in place, on this layer's device, dropping gradients:
  // a classifier head is replaced without changing its registered names or order.
  void replace_with(const Linear& other);
  Variable weight, bias;  // bias undefined when built without
  int64_t in_features, out_features;
};

struct Conv2dOptions {
  int64_t stride = 1;
  int64_t padding = -1;  // -1: (k − 1)/2 · dilation, the "same" size at stride 1
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = false;
  bool tf_same_padding = false;  // TensorFlow "SAME" padding (see tf_same_padding below)
  Generator* gen = nullptr;
};

class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, const Conv2dOptions& options = {});
  Variable forward(const Variable& x) override;
  Variable weight, bias;
  Conv2dParams params;
  int64_t in_channels, out_channels, kernel_size;
  // TensorFlow "SAME" padding (timm's tf_* models): replaces params' padding at every call.
  bool tf_same_padding = false;
};

// TF "SAME" padding of one axis: (before, after) for input size `size`.
std::pair<int64_t, int64_t> tf_same_pads(int64_t size, int64_t kernel, int64_t stride, int64_t dilation);

// An activation is a unary op: Act::silu is UnaryOp::silu (Act::identity passes x through).
using Act = UnaryOp;

class BatchNorm2d : public UnaryModule {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Variable forward(const Variable& x) override;
  // apply_act(act, forward(x)); ReLU and ReLU6 are fused into the batch norm (one pass fewer
  // over memory each way), the other activations follow it.
  Variable forward_act(const Variable& x, Act act);
  // SAM's second forward pass must not update the running statistics.
  void set_stats_frozen(bool frozen) { stats_frozen_ = frozen; }
  // SyncBatchNorm: when set, training-mode statistics are those of every rank's batch together,
  // summed through it (sync_batch_norm; dist::enable_sync_batch_norm sets it). Eval is unchanged.
  ChannelSum sync_sum;
  Variable weight, bias;
  Tensor& running_mean;
  Tensor& running_var;
  Tensor& num_batches_tracked;  // i64 scalar, counted like PyTorch (kept for checkpoint interop)
  double eps, momentum;

 private:
  bool stats_frozen_ = false;
};

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5);
  Variable forward(const Variable& x) override;
  Variable weight, bias;
  double eps;
};

class Dropout : public UnaryModule {
 public:
  explicit Dropout(double drop_probability, Generator* gen = nullptr);
  Variable forward(const Variable& x) override;
  double p;

 private:
  Generator* gen_;
};

class DropPath : public UnaryModule {
 public:
  explicit DropPath(double drop_probability, Generator* gen = nullptr);
  Variable forward(const Variable& x) override;
  double p;

 private:
  Generator* gen_;
};

// By the op's name ("silu"; "swish" is silu too).
Act act_from_name(const std::string& name);
// act(x); identity returns x itself.
Variable apply_act(Act act, const Variable& x);

class Activation : public UnaryModule {
 public:
  explicit Activation(Act act) : act(act) {}
  Variable forward(const Variable& x) override { return apply_act(act, x); }
  Act act;
};

// Freezes (or unfreezes) the running statistics of every BatchNorm2d under `module`.
void set_batch_norm_stats_frozen(Module& module, bool frozen);
// Puts every BatchNorm2d at or under `prefix` of `module` in evaluation mode (normalise with the
// running statistics, update nothing) or back in `module`'s mode: a frozen body in fine-tuning.
void set_batch_norm_eval(Module& module, bool eval, const std::string& prefix = "");
// Sets the momentum of every BatchNorm2d under `module` (running = (1 − m)·running + m·batch, as
// PyTorch; timm's --bn-momentum) and returns how many it set. m must be in (0, 1].
int64_t set_batch_norm_momentum(Module& module, double momentum);

}  // namespace ember::nn
