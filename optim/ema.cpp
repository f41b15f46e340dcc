#include "optim/ema.h"

#include <unordered_map>

#include "tensor/ops/binary.h"

namespace ember::optim {

static nn::StateDict clone_all(const nn::StateDict& dict) {
  nn::StateDict out;
  out.reserve(dict.size());
  for (const auto& [name, t] : dict) out.emplace_back(name, t.clone());
  return out;
}

EMA::EMA(nn::Module& module, double decay) : module_(module), decay_(decay), shadow_(clone_all(module.state_dict())) {
  set_decay(decay);
}

void EMA::set_decay(double decay) {
  EMBER_CHECK(decay >= 0 && decay <= 1, "EMA: decay ", decay, " must lie in [0, 1]");
  decay_ = decay;
}

void EMA::update() {
  nn::StateDict current = module_.state_dict();
  EMBER_CHECK(current.size() == shadow_.size(), "EMA::update: the module has ", current.size(),
              " state entries but the EMA was built with ", shadow_.size());
  for (size_t i = 0; i < current.size(); ++i) {
    auto& [name, shadow] = shadow_[i];
    const Tensor& w = current[i].second;
    EMBER_CHECK(current[i].first == name && w.shape() == shadow.shape(), "EMA::update: module entry '",
                current[i].first, "' ", w.shape_str(), " does not match the EMA's '", name, "' ", shadow.shape_str());
    if (!is_floating(shadow.dtype())) {
      shadow.copy_(w);
      continue;
    }
    Tensor blend = mul(w.dtype() == shadow.dtype() ? w : w.to(shadow.dtype()), 1.0 - decay_);
    mul_(shadow, decay_);
    add_(shadow, blend);
  }
  ++num_updates_;
}

void EMA::copy_to(nn::Module& module) const { module.load_state_dict(shadow_, /*strict=*/true); }

void EMA::store() { stored_ = clone_all(module_.state_dict()); }

void EMA::restore() {
  EMBER_CHECK(!stored_.empty() || module_.state_dict().empty(), "EMA::restore: nothing stored (call store() first)");
  module_.load_state_dict(stored_, /*strict=*/true);
  stored_.clear();
}

void EMA::load_state_dict(const nn::StateDict& dict) {
  std::unordered_map<std::string, const Tensor*> given;
  for (const auto& [name, t] : dict) given[name] = &t;
  for (auto& [name, shadow] : shadow_) {
    auto it = given.find(name);
    EMBER_CHECK(it != given.end(), "EMA::load_state_dict: '", name, "' is missing");
    EMBER_CHECK(it->second->shape() == shadow.shape(), "EMA::load_state_dict: '", name, "' has shape ",
                it->second->shape_str(), ", expected ", shadow.shape_str());
  }
  EMBER_CHECK(dict.size() == shadow_.size(), "EMA::load_state_dict: ", dict.size(), " entries, expected ",
              shadow_.size());
  for (auto& [name, shadow] : shadow_) shadow.copy_(*given[name]);
}

}  // namespace ember::optim
