// nn::Module: a tree of named parameters, buffers and child modules.
//
// A model is built by registering things under short names; every query walks the tree and
// joins the names with dots, in registration order, the way timm / PyTorch name them:
//
//   struct Block : nn::Module {
//     Block() { conv_pw = register_module("conv_pw", std::make_shared<Conv2d>(...)); }
//     std::shared_ptr<Conv2d> conv_pw;
//   };
//   model.named_parameters()  ->  "blocks.1.0.conv_pw.weight", ...
//
// Parameters are Variables (requires_grad on) and buffers are Tensors (BatchNorm running
// stats). Each module lists its own parameters, then its own buffers, then each child in
// turn; state_dict() follows the same order, so it matches PyTorch's for the same structure.
//
// Moving (to(Device), to(DType)) and loading (load_state_dict) change the parameters and
// buffers in place: a layer that keeps a copy of its weight Variable sees the new data, and a
// layer that keeps the Tensor& register_buffer returned sees the new buffer (the reference
// stays valid for the module's lifetime).
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace ember::nn {

// Ordered (name -> tensor) pairs: a state dict, or a checkpoint's tensors.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

// Several state dicts in one checkpoint: add_prefix(opt.state_dict(), "optimizer") names each
// entry "optimizer.<name>"; select_prefix(file, "optimizer") takes those entries back with the
// prefix removed (and drops the rest).
StateDict add_prefix(const StateDict& dict, const std::string& prefix);
StateDict select_prefix(const StateDict& dict, const std::string& prefix);

struct ShapeMismatch {
  std::string name;
  Shape expected;  // the module's
  Shape got;       // the state dict's
};

// What load_state_dict found: names the module has but the dict lacks, names the dict has
// but the module lacks, and names whose shapes differ (those are not loaded).
struct LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::vector<ShapeMismatch> mismatched;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;  // one line per list, e.g. "missing: a.weight, a.bias"
};

// Parameters an optimizer updates with one set of hyperparameters. lr < 0 means "the
// optimizer's lr times lr_scale"; schedules set lr on every group (again times lr_scale).
struct ParamGroup {
  std::string name;
  std::vector<Variable> params;
  std::vector<std::string> param_names;  // parallel to params (may be empty)
  double weight_decay = 0.0;
  double lr = -1.0;
  double lr_scale = 1.0;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;  // children are shared; a copy would alias them
  Module& operator=(const Module&) = delete;

  // ---- building --------------------------------------------------------------------
  // Names are non-empty, contain no '.', and are unique among this module's parameters,
  // buffers and children. A parameter has requires_grad switched on (it must be a floating
  // leaf); the returned Variable shares state with the registered one.
  Variable register_parameter(const std::string& name, Variable param);
  Variable register_parameter(const std::string& name, const Tensor& data);
  // The reference stays valid (and sees to()/load_state_dict replacements) for the module's life.
  Tensor& register_buffer(const std::string& name, Tensor buffer);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- queries (dotted paths, registration order) ------------------------------------
  // A parameter registered in several places (tied weights) is listed once, under its first
  // name; state_dict() lists it under every name, as PyTorch does.
  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Variable> parameters() const;
  // Direct children, and every module of the tree with its path (this one first, as "").
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  std::vector<std::pair<std::string, Module*>> named_modules();
  // By dotted path ("blocks.0.conv_pw.weight"); throws naming the path when absent.
  Variable parameter(const std::string& path) const;
  Tensor& buffer(const std::string& path);
  // Total elements of the parameters (only those with requires_grad when trainable_only).
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- modes and placement -------------------------------------------------------------
  virtual void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Move every parameter (and its gradient) and buffer in place. to(DType) converts only
  // floating tensors (integer buffers such as step counters keep their dtype).
  void to(Device device);
  void to(DType dtype);

  // ---- checkpoints -----------------------------------------------------------------------
  // Parameters' and buffers' tensors (sharing storage with the module: clone to snapshot).
  StateDict state_dict() const;
  // Copies matching entries into the module in place (converting dtype and device). In strict
  // mode any missing, unexpected or mis-shaped name throws an Error listing all three, and
  // nothing is loaded; otherwise the matching entries load and the report says what did not.
  LoadReport load_state_dict(const StateDict& dict, bool strict = true);

  // ---- fine-tuning -----------------------------------------------------------------------
  // requires_grad off / on for the parameters at or under a dotted prefix ("" = all):
  // freeze("blocks.0") touches "blocks.0.conv.weight" but not "blocks.01.x". Returns how many
  // parameters changed state; a prefix that names no parameter throws.
  int64_t freeze(const std::string& prefix = "");
  // "a.b" is at or under "a" and "a.b" (not "ab"); "" covers everything.
  static bool is_under(const std::string& name, const std::string& prefix);
  int64_t unfreeze(const std::string& prefix = "");
  // Two groups, "decay" (weight_decay) and "no_decay" (0): no_decay takes 1-D parameters
  // (norm weights, biases) and parameters whose last name component is in no_decay_names.
  // Frozen parameters are included (an optimizer skips parameters without a gradient), so a
  // later unfreeze trains them.
  std::vector<ParamGroup> param_groups(double weight_decay,
                                       const std::vector<std::string>& no_decay_names = {"pos_embed", "cls_token",
                                                                                         "dist_token"}) const;

 protected:
  // Own entries only (not children's).
  const std::vector<std::pair<std::string, Variable>>& own_parameters() const { return params_; }
  const std::deque<std::pair<std::string, Tensor>>& own_buffers() const { return buffers_; }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  int64_t set_requires_grad_under(const std::string& prefix, bool on, const char* op);

  std::vector<std::pair<std::string, Variable>> params_;
  std::deque<std::pair<std::string, Tensor>> buffers_;  // deque: references stay valid on growth
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output: what Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Variable forward(const Variable& x) = 0;
  Variable operator()(const Variable& x) { return forward(x); }
};

// Children named "0", "1", ... applied in order.
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> modules);
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<UnaryModule, M>, "Sequential holds UnaryModules");
    register_module(std::to_string(layers_.size()), module);
    layers_.push_back(module);
    return module;
  }
  Variable forward(const Variable& x) override;
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace ember::nn
