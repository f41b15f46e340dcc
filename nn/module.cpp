#include "nn/module.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace ember::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// "a.b" is at or under "a" and "a.b"; "" covers everything.
bool under_prefix(const std::string& name, const std::string& prefix) {
  if (prefix.empty() || name == prefix) return true;
  return name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 && name[prefix.size()] == '.';
}

std::string last_component(const std::string& name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// Visits every (path, module) pair of the tree, depth first, parents before children.
template <class Fn>
void walk(const Module& m, const std::string& prefix, Fn&& fn) {
  fn(prefix, m);
  for (const auto& [name, child] : m.children()) walk(*child, join(prefix, name), fn);
}

}  // namespace

StateDict add_prefix(const StateDict& dict, const std::string& prefix) {
  StateDict out;
  out.reserve(dict.size());
  for (const auto& [name, t] : dict) out.emplace_back(join(prefix, name), t);
  return out;
}

StateDict select_prefix(const StateDict& dict, const std::string& prefix) {
  if (prefix.empty()) return dict;
  StateDict out;
  for (const auto& [name, t] : dict)
    if (name.size() > prefix.size() && under_prefix(name, prefix)) out.emplace_back(name.substr(prefix.size() + 1), t);
  return out;
}

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    os << what << " (" << names.size() << "):";
    for (size_t i = 0; i < names.size(); ++i) os << (i ? ", " : " ") << names[i];
    os << "\n";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  os << "mismatched (" << mismatched.size() << "):";
  for (size_t i = 0; i < mismatched.size(); ++i)
    os << (i ? ", " : " ") << mismatched[i].name << " (module " << shape_str(mismatched[i].expected) << ", got "
       << shape_str(mismatched[i].got) << ")";
  os << "\n";
  return os.str();
}

// ---- building -------------------------------------------------------------------------

void Module::check_new_name(const std::string& name, const char* what) const {
  EMBER_CHECK(!name.empty(), what, ": empty name");
  EMBER_CHECK(name.find('.') == std::string::npos, what, ": name '", name,
              "' contains '.' (dots join the names of nested modules)");
  auto taken = [&](const auto& entries) {
    return std::any_of(entries.begin(), entries.end(), [&](const auto& e) { return e.first == name; });
  };
  EMBER_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), what, ": name '", name,
              "' is already registered in this module");
}

Variable Module::register_parameter(const std::string& name, Variable param) {
  check_new_name(name, "register_parameter");
  EMBER_CHECK(param.defined(), "register_parameter: '", name, "' is an undefined Variable");
  param.set_requires_grad(true);  // throws for non-leaves and non-floating dtypes
  if (param.name().empty()) param.set_name(name);
  params_.emplace_back(name, param);
  return param;
}

Variable Module::register_parameter(const std::string& name, const Tensor& data) {
  EMBER_CHECK(data.defined(), "register_parameter: '", name, "' is an undefined Tensor");
  return register_parameter(name, Variable(data));
}

Tensor& Module::register_buffer(const std::string& name, Tensor buffer) {
  check_new_name(name, "register_buffer");
  EMBER_CHECK(buffer.defined(), "register_buffer: '", name, "' is an undefined Tensor");
  buffers_.emplace_back(name, std::move(buffer));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  EMBER_CHECK(module != nullptr, "register_module: '", name, "' is a null module");
  EMBER_CHECK(module.get() != this, "register_module: '", name, "' is the module itself");
  children_.emplace_back(name, std::move(module));
}

// ---- queries ----------------------------------------------------------------------------

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> out;
  std::unordered_set<const VariableImpl*> seen;  // a shared (tied) parameter is listed once
  walk(*this, "", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, p] : m.params_)
      if (seen.insert(p.impl()).second) out.emplace_back(join(prefix, name), p);
  });
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  walk(*this, "", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, b] : m.buffers_) out.emplace_back(join(prefix, name), b);
  });
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  walk(*this, "", [&](const std::string& prefix, const Module& m) {
    out.emplace_back(prefix, const_cast<Module*>(&m));  // the tree is ours to hand out mutably
  });
  return out;
}

Variable Module::parameter(const std::string& path) const {
  for (const auto& [name, p] : named_parameters())
    if (name == path) return p;
  throw make_error("Module::parameter: no parameter named '", path, "'");
}

Tensor& Module::buffer(const std::string& path) {
  for (auto& [prefix, m] : named_modules())
    for (auto& [name, b] : m->buffers_)
      if (join(prefix, name) == path) return b;
  throw make_error("Module::buffer: no buffer named '", path, "'");
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

// ---- modes and placement ----------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (auto& [prefix, m] : named_modules()) {
    for (auto& [name, p] : m->params_) {
      p.data() = p.data().to(device);
      if (p.grad().defined()) p.set_grad(p.grad().to(device));
    }
    for (auto& [name, b] : m->buffers_) b = b.to(device);
  }
}

void Module::to(DType dtype) {
  EMBER_CHECK(is_floating(dtype), "Module::to: dtype ", dtype_name(dtype),
              " is not a floating dtype (parameters must stay floating)");
  for (auto& [prefix, m] : named_modules()) {
    for (auto& [name, p] : m->params_) {
      p.data() = p.data().to(dtype);
      if (p.grad().defined()) p.set_grad(p.grad().to(dtype));
    }
    for (auto& [name, b] : m->buffers_)
      if (is_floating(b.dtype())) b = b.to(dtype);
  }
}

// ---- checkpoints ---------------------------------------------------------------------------

StateDict Module::state_dict() const {
  StateDict out;
  walk(*this, "", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, p] : m.params_) out.emplace_back(join(prefix, name), p.data());
    for (const auto& [name, b] : m.buffers_) out.emplace_back(join(prefix, name), b);
  });
  return out;
}

LoadReport Module::load_state_dict(const StateDict& dict, bool strict) {
  std::unordered_map<std::string, const Tensor*> given;
  for (const auto& [name, t] : dict) {
    EMBER_CHECK(t.defined(), "load_state_dict: entry '", name, "' is an undefined tensor");
    EMBER_CHECK(given.emplace(name, &t).second, "load_state_dict: the state dict names '", name, "' twice");
  }
  // Every destination tensor of the module, by name: parameters' data and buffers.
  std::vector<std::pair<std::string, Tensor*>> targets;
  for (auto& [prefix, m] : named_modules()) {
    for (auto& [name, p] : m->params_) targets.emplace_back(join(prefix, name), &p.data());
    for (auto& [name, b] : m->buffers_) targets.emplace_back(join(prefix, name), &b);
  }
  LoadReport report;
  std::vector<std::pair<Tensor*, const Tensor*>> copies;
  std::unordered_set<std::string> known;
  for (auto& [name, dst] : targets) {
    known.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      report.missing.push_back(name);
    } else if (it->second->shape() != dst->shape()) {
      report.mismatched.push_back({name, dst->shape(), it->second->shape()});
    } else {
      copies.emplace_back(dst, it->second);
    }
  }
  for (const auto& [name, t] : dict)
    if (!known.count(name)) report.unexpected.push_back(name);
  if (strict && !report.ok())
    throw make_error("load_state_dict (strict): the state dict does not match the module; nothing was loaded\n",
                     report.str());
  for (auto& [dst, src] : copies) dst->copy_(*src);  // in place: converts dtype and device
  return report;
}

// ---- fine-tuning ---------------------------------------------------------------------------

int64_t Module::set_requires_grad_under(const std::string& prefix, bool on, const char* op) {
  int64_t matched = 0, changed = 0;
  for (auto& [name, p] : named_parameters()) {
    if (!under_prefix(name, prefix)) continue;
    ++matched;
    if (p.requires_grad() != on) {
      p.set_requires_grad(on);
      if (!on) p.zero_grad();
      ++changed;
    }
  }
  EMBER_CHECK(matched > 0 || (prefix.empty()), op, ": no parameter at or under '", prefix, "'");
  return changed;
}

bool Module::is_under(const std::string& name, const std::string& prefix) { return under_prefix(name, prefix); }

int64_t Module::freeze(const std::string& prefix) { return set_requires_grad_under(prefix, false, "freeze"); }
int64_t Module::unfreeze(const std::string& prefix) { return set_requires_grad_under(prefix, true, "unfreeze"); }

std::vector<ParamGroup> Module::param_groups(double weight_decay,
                                             const std::vector<std::string>& no_decay_names) const {
  ParamGroup decay, no_decay;
  decay.name = "decay";
  decay.weight_decay = weight_decay;
  no_decay.name = "no_decay";
  no_decay.weight_decay = 0.0;
  for (const auto& [name, p] : named_parameters()) {
    bool excluded = p.dim() <= 1 || std::find(no_decay_names.begin(), no_decay_names.end(), last_component(name)) !=
                                        no_decay_names.end();
    ParamGroup& g = excluded ? no_decay : decay;
    g.params.push_back(p);
    g.param_names.push_back(name);
  }
  return {decay, no_decay};
}

// ---- Sequential ----------------------------------------------------------------------------

Sequential::Sequential(std::vector<std::shared_ptr<UnaryModule>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

Variable Sequential::forward(const Variable& x) {
  Variable y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  EMBER_CHECK(i < layers_.size(), "Sequential: index ", i, " out of range (size ", layers_.size(), ")");
  return layers_[i];
}

}  // namespace ember::nn
