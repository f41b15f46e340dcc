#include "optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "tensor/ops/adamw.h"

namespace ember::optim {

namespace {

// Parses a non-negative decimal index; false when `s` is anything else.
bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out >= 0;
}

// "a.b.c" -> {"a", "b", "c"}
std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups, double default_lr) : groups_(std::move(groups)) {
  EMBER_CHECK(default_lr >= 0, "Optimizer: lr ", default_lr, " must be >= 0");
  std::unordered_set<const VariableImpl*> seen;
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    EMBER_CHECK(group.weight_decay >= 0, "Optimizer: group ", g, " ('", group.name, "') has weight_decay ",
                group.weight_decay, " (expected >= 0)");
    if (group.lr < 0) group.lr = default_lr * group.lr_scale;
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Variable& p = group.params[i];
      std::string label = i < group.param_names.size() ? "'" + group.param_names[i] + "'" : std::to_string(i);
      EMBER_CHECK(p.defined(), "Optimizer: parameter ", label, " of group ", g, " is undefined");
      EMBER_CHECK(p.is_leaf(), "Optimizer: parameter ", label, " of group ", g,
                  " is not a leaf (it is the result of an op); optimize the Variables you created");
      EMBER_CHECK(is_floating(p.dtype()), "Optimizer: parameter ", label, " of group ", g, " has dtype ",
                  dtype_name(p.dtype()), " (expected a floating dtype)");
      EMBER_CHECK(seen.insert(p.impl()).second, "Optimizer: parameter ", label, " of group ", g,
                  " appears more than once in the groups");
    }
  }
  state_.resize(seen.size());
}

void Optimizer::zero_grad() {
  for (ParamGroup& group : groups_)
    for (Variable& p : group.params) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  EMBER_CHECK(lr >= 0, "Optimizer::set_lr: lr ", lr, " must be >= 0");
  for (ParamGroup& group : groups_) group.lr = lr * group.lr_scale;
}

double Optimizer::lr() const {
  EMBER_CHECK(!groups_.empty(), "Optimizer::lr: the optimizer has no parameter groups");
  return groups_[0].lr;
}

int64_t Optimizer::num_params() const { return static_cast<int64_t>(state_.size()); }

int64_t Optimizer::step_count(int64_t param_index) const {
  EMBER_CHECK(param_index >= 0 && param_index < num_params(), "Optimizer::step_count: index ", param_index,
              " out of range (", num_params(), " parameters)");
  return state_[param_index].step;
}

DType Optimizer::state_dtype(const Variable& p) { return optimizer_state_dtype(p.dtype()); }

Tensor Optimizer::zeros_for(const Variable& p) { return zeros(p.shape(), state_dtype(p), p.device()); }

void Optimizer::check_groups_unchanged() const {
  size_t n = 0;
  for (const ParamGroup& group : groups_) n += group.params.size();
  EMBER_CHECK(n == state_.size(), "Optimizer: the parameter groups now hold ", n, " parameters but the optimizer was "
              "built with ", state_.size(), "; parameters cannot be added or removed after construction");
}

nn::StateDict Optimizer::state_dict() const {
  check_groups_unchanged();
  nn::StateDict out;
  for (size_t i = 0; i < state_.size(); ++i) {
    const ParamState& s = state_[i];
    if (s.step == 0 && s.buffers.empty()) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", scalar_tensor(static_cast<double>(s.step), DType::i64));
    for (const auto& [name, t] : s.buffers) out.emplace_back(prefix + name, t);
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    out.emplace_back(prefix + "lr", scalar_tensor(groups_[g].lr, DType::f64));
    out.emplace_back(prefix + "weight_decay", scalar_tensor(groups_[g].weight_decay, DType::f64));
  }
  return out;
}

void Optimizer::load_state_dict(const nn::StateDict& dict) {
  check_groups_unchanged();
  std::vector<const Variable*> params;
  for (const ParamGroup& group : groups_)
    for (const Variable& p : group.params) params.push_back(&p);
  const std::vector<std::string> names = state_names();

  // Build the new state aside and swap it in only when every entry checked out.
  std::vector<ParamState> state(state_.size());
  std::vector<std::pair<double, double>> hyper;  // (lr, weight_decay) per group
  for (const ParamGroup& group : groups_) hyper.emplace_back(group.lr, group.weight_decay);
  std::vector<bool> has_step(state_.size(), false);
  for (const auto& [key, t] : dict) {
    auto parts = split_dots(key);
    int64_t index = -1;
    EMBER_CHECK(parts.size() == 3 && parse_index(parts[1], index) && (parts[0] == "state" || parts[0] == "param_groups"),
                "Optimizer::load_state_dict: unexpected name '", key,
                "' (expected state.<param>.<buffer> or param_groups.<group>.<field>)");
    EMBER_CHECK(t.defined(), "Optimizer::load_state_dict: '", key, "' is an undefined tensor");
    if (parts[0] == "param_groups") {
      EMBER_CHECK(index < static_cast<int64_t>(groups_.size()), "Optimizer::load_state_dict: '", key,
                  "' names group ", index, " but the optimizer has ", groups_.size());
      EMBER_CHECK(t.numel() == 1, "Optimizer::load_state_dict: '", key, "' has shape ", t.shape_str(),
                  " (expected one element)");
      if (parts[2] == "lr") {
        hyper[index].first = t.item();
      } else if (parts[2] == "weight_decay") {
        hyper[index].second = t.item();
      } else {
        throw make_error("Optimizer::load_state_dict: unknown group field '", parts[2], "' in '", key, "'");
      }
      continue;
    }
    EMBER_CHECK(index < num_params(), "Optimizer::load_state_dict: '", key, "' names parameter ", index,
                " but the optimizer has ", num_params());
    const Variable& p = *params[index];
    if (parts[2] == "step") {
      EMBER_CHECK(t.numel() == 1, "Optimizer::load_state_dict: '", key, "' has shape ", t.shape_str(),
                  " (expected one element)");
      state[index].step = static_cast<int64_t>(t.item());
      has_step[index] = true;
      continue;
    }
    EMBER_CHECK(std::find(names.begin(), names.end(), parts[2]) != names.end(), "Optimizer::load_state_dict: '", key,
                "' is not state this optimizer keeps");
    EMBER_CHECK(t.shape() == p.shape(), "Optimizer::load_state_dict: '", key, "' has shape ", t.shape_str(),
                " but parameter ", index, " has shape ", shape_str(p.shape()));
    Tensor copy = empty(p.shape(), state_dtype(p), p.device());
    copy.copy_(t);
    state[index].buffers[parts[2]] = copy;
  }
  for (size_t i = 0; i < state.size(); ++i)
    EMBER_CHECK(has_step[i] || state[i].buffers.empty(), "Optimizer::load_state_dict: parameter ", i,
                " has buffers but no 'state.", i, ".step'");
  state_ = std::move(state);
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].lr = hyper[g].first;
    groups_[g].weight_decay = hyper[g].second;
  }
}

}  // namespace ember::optim
