// The optimizer interface: parameters in groups, each group with its own lr and weight decay,
// per-parameter state (a step count and named moment buffers), and a state dict of named
// tensors so a checkpoint (safetensors) holds the optimizer beside the model.
//
//   auto groups = model.param_groups(/*weight_decay=*/0.05);     // decay / no_decay
//   optim::AdamW opt(groups, {.lr = 1e-3});
//   for (it ...) { opt.set_lr(schedule.lr(it)); opt.zero_grad(); loss.backward(); opt.step(); }
//
// step() updates every parameter that requires grad and has a gradient; the others (frozen, or
// not reached by backward) are skipped, their state untouched, as in PyTorch.
//
// State dict names, with i the parameter's index counting through the groups in order:
//   "state.<i>.step"              i64 scalar: steps taken by parameter i
//   "state.<i>.<buffer>"          its buffers: "exp_avg", "exp_avg_sq" (Adam), "momentum_buffer" (SGD)
//   "param_groups.<g>.lr"         f64 scalar, and "param_groups.<g>.weight_decay"
// The tensors share storage with the optimizer (clone them to keep a snapshot while training).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace ember::optim {

using nn::ParamGroup;

class Optimizer {
 public:
  // Groups with lr < 0 take default_lr · lr_scale. Parameters must be floating leaves, each in
  // one group only.
  Optimizer(std::vector<ParamGroup> groups, double default_lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;
  void zero_grad();  // drops every parameter's gradient

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Every group's lr becomes lr · lr_scale (what a schedule calls each iteration).
  void set_lr(double lr);
  double lr() const;  // group 0's lr
  int64_t num_params() const;
  // Steps taken by parameter i (global index), 0 before its first update.
  int64_t step_count(int64_t param_index) const;

  nn::StateDict state_dict() const;
  // Replaces the state (buffers are copied to each parameter's device and dtype) and the groups'
  // lr and weight_decay. Throws on names it does not know, indices out of range or shapes that
  // differ from the parameter's, leaving the optimizer unchanged.
  void load_state_dict(const nn::StateDict& dict);

 protected:
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
  };
  // The buffer names this optimizer keeps per parameter (for load_state_dict's checks).
  virtual std::vector<std::string> state_names() const = 0;
  // fn(group, param, grad, state) for each parameter with requires_grad and a gradient; grad is
  // contiguous. Subclasses' step() is this loop around a fused kernel.
  template <class Fn>
  void for_each_param_with_grad(Fn&& fn) {
    check_groups_unchanged();
    int64_t index = 0;
    for (ParamGroup& group : groups_)
      for (Variable& p : group.params) {
        ParamState& state = state_[index++];
        if (!p.requires_grad() || !p.grad().defined()) continue;
        const Tensor& g = p.grad();
        fn(group, p, g.is_contiguous() ? g : g.contiguous(), state);
      }
  }
  // The dtype of a parameter's state buffers: f32 for f32, bf16 and f16 parameters, f64 for f64
  // (optimizer_state_dtype, tensor/ops/adamw.h).
  static DType state_dtype(const Variable& p);
  // A zero-filled buffer shaped like the parameter (contiguous, on its device, in state_dtype).
  static Tensor zeros_for(const Variable& p);
  // State is indexed by parameter position: adding or removing parameters through
  // param_groups() after construction is an error (build a new optimizer instead).
  void check_groups_unchanged() const;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<ParamState> state_;  // by global parameter index
};

}  // namespace ember::optim
