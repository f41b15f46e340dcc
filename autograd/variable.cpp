#include "autograd/variable.h"

#include <unordered_map>
#include <unordered_set>

#include "tensor/ops/binary.h"
#include "tensor/ops/reduce.h"
#include "tensor/profiler.h"

namespace ember {

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  impl_->data = std::move(data);
  if (requires_grad) set_requires_grad(true);
}

static VariableImpl& checked(const std::shared_ptr<VariableImpl>& impl, const char* what) {
  EMBER_CHECK(impl != nullptr, "Variable::", what, ": undefined Variable");
  return *impl;
}

const Tensor& Variable::data() const { return checked(impl_, "data").data; }
Tensor& Variable::data() { return checked(impl_, "data").data; }
const std::shared_ptr<Node>& Variable::grad_fn() const { return checked(impl_, "grad_fn").grad_fn; }
const Tensor& Variable::grad() const { return checked(impl_, "grad").grad; }
const std::string& Variable::name() const { return checked(impl_, "name").name; }

Variable& Variable::set_requires_grad(bool on) {
  auto& impl = checked(impl_, "set_requires_grad");
  EMBER_CHECK(!impl.grad_fn, "set_requires_grad: only leaf Variables can change requires_grad (this one is the "
              "result of '", impl.grad_fn->name, "')");
  EMBER_CHECK(!on || is_floating(impl.data.dtype()), "set_requires_grad: dtype ", dtype_name(impl.data.dtype()),
              " cannot require gradients (expected a floating dtype)");
  impl.requires_grad = on;
  return *this;
}

void Variable::set_grad(const Tensor& g) {
  auto& impl = checked(impl_, "set_grad");
  EMBER_CHECK(!g.defined() || g.shape() == impl.data.shape(), "set_grad: gradient shape ", shape_str(g.shape()),
              " does not match the variable's shape ", shape_str(impl.data.shape()));
  impl.grad = g;
}

void Variable::zero_grad() { checked(impl_, "zero_grad").grad = Tensor(); }

void Variable::set_grad_ready_hook(GradReadyHook hook) {
  auto& impl = checked(impl_, "set_grad_ready_hook");
  EMBER_CHECK(!impl.grad_fn, "set_grad_ready_hook: only leaf Variables have a gradient to be ready (this one is the "
              "result of '", impl.grad_fn->name, "')");
  impl.grad_ready_hook = std::move(hook);
}

Variable& Variable::set_name(const std::string& name) {
  checked(impl_, "set_name").name = name;
  return *this;
}

Variable Variable::detach() const { return Variable(data(), false); }

// ---- grad mode --------------------------------------------------------------------
static thread_local bool tls_grad_enabled = true;
bool grad_enabled() { return tls_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(tls_grad_enabled) { tls_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { tls_grad_enabled = prev_; }

Variable make_result(Tensor out, std::vector<Variable> inputs, const char* name, BackwardFn backward) {
  bool any = false;
  std::vector<bool> needs(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    needs[i] = inputs[i].defined() && inputs[i].requires_grad();
    any = any || needs[i];
  }
  Variable result(std::move(out));
  if (!any || !grad_enabled()) return result;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->needs_grad = std::move(needs);
  node->backward = std::move(backward);
  result.impl()->requires_grad = true;
  result.impl()->grad_fn = std::move(node);
  return result;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  EMBER_CHECK(lead >= 0, "sum_to: cannot reduce ", grad.shape_str(), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return r.reshape(shape);
}

// ---- backward ---------------------------------------------------------------------

// Pending gradients of inner Nodes are never written in place, so they may alias.
static void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }

// A leaf's .grad is handed to optimizers and clipping, which may scale it in place, so it
// always owns its memory (a backward may return one tensor for several inputs).
static void accumulate_leaf(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g.clone(); }

void Variable::backward(const Tensor& grad, bool retain_graph) const {
  auto& impl = checked(impl_, "backward");
  EMBER_CHECK(impl.requires_grad, "backward: this Variable does not require grad (no input of the ops that made it "
              "requires grad, or it was made under no_grad)");
  Tensor root_grad = grad;
  if (!root_grad.defined()) {
    EMBER_CHECK(impl.data.numel() == 1, "backward: the output has shape ", impl.data.shape_str(),
                "; pass a gradient of that shape or reduce it to one element first");
    root_grad = ones_like(impl.data);
  }
  EMBER_CHECK(root_grad.shape() == impl.data.shape(), "backward: gradient shape ", root_grad.shape_str(),
              " does not match the output shape ", impl.data.shape_str());
  EMBER_CHECK(root_grad.device() == impl.data.device(), "backward: gradient on ", root_grad.device().str(),
              " but the output is on ", impl.data.device().str());

  if (!impl.grad_fn) {  // a leaf: its gradient is the given one
    accumulate_leaf(impl.grad, root_grad.to(impl.data.dtype()));
    if (impl.grad_ready_hook) impl.grad_ready_hook();
    return;
  }

  // Topological order of the Nodes reachable from the root (iterative DFS, post-order).
  // `alive` owns every reached Node until the walk ends: releasing a Node drops its inputs,
  // which may be the last owner of a Node that has yet to run (an intermediate Variable that
  // only the graph held, as in flatten(transpose(x))).
  std::vector<Node*> order;
  std::vector<std::shared_ptr<Node>> alive{impl.grad_fn};
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{impl.grad_fn.get(), 0}};
  seen.insert(impl.grad_fn.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Variable& in = node->inputs[next++];
      Node* child = in.defined() ? in.impl()->grad_fn.get() : nullptr;
      if (child && seen.insert(child).second) {
        alive.push_back(in.impl()->grad_fn);
        stack.push_back({child, 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  // Leaves with a grad-ready hook: how many edges (a Node's input slot that wants a gradient)
  // still lead to each. Every Node in `order` is visited once below, whether a gradient reached
  // it or not, so the count drops to zero exactly when the leaf's gradient is final.
  std::unordered_map<VariableImpl*, int64_t> hooked_edges;
  auto hooked_leaf = [](const Node& node, size_t i) -> VariableImpl* {
    const Variable& in = node.inputs[i];
    if (!node.needs_grad[i] || !in.defined() || in.impl()->grad_fn || !in.impl()->grad_ready_hook) return nullptr;
    return in.impl();
  };
  for (Node* node : order)
    for (size_t i = 0; i < node->inputs.size(); ++i)
      if (VariableImpl* leaf = hooked_leaf(*node, i)) ++hooked_edges[leaf];
  auto edges_done = [&](const Node& node) {
    if (hooked_edges.empty()) return;
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (VariableImpl* leaf = hooked_leaf(node, i))
        if (--hooked_edges[leaf] == 0) leaf->grad_ready_hook();
  };

  std::unordered_map<Node*, Tensor> pending;
  pending[impl.grad_fn.get()] = root_grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = pending.find(node);
    if (found == pending.end()) {  // nothing flowed here
      edges_done(*node);
      continue;
    }
    Tensor g = std::move(found->second);
    pending.erase(found);
    EMBER_CHECK(node->backward != nullptr, "backward: the graph through '", node->name,
                "' was already freed by an earlier backward; pass retain_graph=true to the first one");
    std::vector<Tensor> grads;
    {
      ProfileScope prof(node->name, ProfileDirection::backward);
      grads = node->backward(g, node->needs_grad);
    }
    EMBER_CHECK(grads.size() == node->inputs.size(), "backward of '", node->name, "' returned ", grads.size(),
                " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Variable& in = node->inputs[i];
      if (!node->needs_grad[i] || !grads[i].defined()) continue;
      EMBER_CHECK(grads[i].shape() == in.shape(), "backward of '", node->name, "': gradient for input ", i,
                  " has shape ", grads[i].shape_str(), ", expected ", shape_str(in.shape()));
      if (in.impl()->grad_fn) {
        accumulate(pending[in.impl()->grad_fn.get()], grads[i]);
      } else if (in.impl()->requires_grad) {
        accumulate_leaf(in.impl()->grad, grads[i]);
      }
    }
    edges_done(*node);
    if (!retain_graph) node->release();
  }
}

}  // namespace ember
