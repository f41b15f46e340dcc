// Reverse-mode autograd, define-by-run.
//
// A Variable is a Tensor plus gradient state. Every differentiable op (autograd/functions/)
// computes its result with tensor ops and, when grad mode is on and an input requires grad,
// records a Node: the input Variables and a backward lambda that maps the output's gradient
// to each input's gradient. backward() walks the Nodes in reverse topological order,
// accumulating gradients; leaves (no grad_fn) accumulate into .grad(). Unless retain_graph is
// set, each Node drops its lambda (and the tensors it saved) once it has run. A leaf may carry a
// "gradient ready" hook, called as soon as backward has made its last accumulation into that
// leaf (data parallelism starts reducing a gradient then, while backward goes on).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ember {

class Variable;
struct Node;

// grads[i] is the gradient for inputs[i], or an undefined Tensor when that input needs none.
// needs_grad[i] says whether inputs[i] wants one, so a backward can skip work.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<bool>& needs_grad)>;

// A leaf's "gradient ready" hook (Variable::set_grad_ready_hook).
using GradReadyHook = std::function<void()>;

struct VariableImpl {
  Tensor data;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  std::string name;  // optional, for error messages ("blocks.0.conv.weight")
  GradReadyHook grad_ready_hook;  // leaves only; empty = none
};

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ && impl_->data.defined(); }
  const Tensor& data() const;
  Tensor& data();  // the tensor itself: in-place updates bypass autograd (optimizers use this)
  const Tensor& tensor() const { return data(); }

  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Variable& set_requires_grad(bool on);  // leaves only
  bool is_leaf() const { return !impl_ || !impl_->grad_fn; }
  const std::shared_ptr<Node>& grad_fn() const;

  const Tensor& grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();            // drops the gradient (the next backward allocates a fresh one)

  // A leaf's "gradient ready" hook: each backward that reaches this leaf calls it once, right
  // after the last edge of the graph that leads to the leaf has been processed, so .grad() is
  // final for that backward (it is left undefined if no gradient flowed along any edge and none
  // was there before). Backward calls it on its own thread, while later Nodes are still to run;
  // an exception it throws ends the backward. One hook per leaf; an empty function removes it.
  // (dist::GradientSync hooks every parameter to start all-reducing a bucket once it is full.)
  void set_grad_ready_hook(GradReadyHook hook);

  // Backpropagates from this Variable. Without `grad` it must hold one element (grad = 1).
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  Variable detach() const;  // same data, no history, no grad

  const std::string& name() const;
  Variable& set_name(const std::string& name);

  // Tensor metadata, forwarded.
  const Shape& shape() const { return data().shape(); }
  int64_t dim() const { return data().dim(); }
  int64_t size(int64_t d) const { return data().size(d); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }
  double item() const { return data().item(); }

  VariableImpl* impl() const { return impl_.get(); }
  bool same(const Variable& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<VariableImpl> impl_;
};

struct Node {
  std::string name;              // the op: "conv2d", "add", ...
  std::vector<Variable> inputs;  // the op's inputs, in order
  std::vector<bool> needs_grad;  // per input: requires_grad at the time of the op
  BackwardFn backward;
  void release() {
    backward = nullptr;
    inputs.clear();
  }
};

// ---- grad mode ------------------------------------------------------------------
bool grad_enabled();
class NoGradGuard {  // { NoGradGuard g; ... } records nothing inside
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Wraps an op's result: records a Node with `backward` when grad mode is on and any input
// requires grad; otherwise returns a plain Variable. Every function in autograd/functions
// ends with this.
Variable make_result(Tensor out, std::vector<Variable> inputs, const char* name, BackwardFn backward);

// Sums `grad` down to `shape` (undoing broadcasting): the gradient rule for any broadcast input.
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace ember
