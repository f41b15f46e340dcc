#include "nn/efficientnet_pytorch_names.h"

#include <map>
#include <optional>

namespace ember::nn {

namespace {

struct Rename {
  const char* from;
  const char* to;
};
constexpr Rename kTop[] = {
    {"_conv_stem", "conv_stem"}, {"_bn0", "bn1"}, {"_conv_head", "conv_head"}, {"_bn1", "bn2"}, {"_fc", "classifier"}};
constexpr Rename kInvertedResidual[] = {
    {"_expand_conv", "conv_pw"}, {"_bn0", "bn1"},   {"_depthwise_conv", "conv_dw"},  {"_bn1", "bn2"},
    {"_se_reduce", "se.conv_reduce"}, {"_se_expand", "se.conv_expand"}, {"_project_conv", "conv_pwl"}, {"_bn2", "bn3"}};
constexpr Rename kDepthwiseSeparable[] = {
    {"_depthwise_conv", "conv_dw"}, {"_bn1", "bn1"}, {"_se_reduce", "se.conv_reduce"},
    {"_se_expand", "se.conv_expand"}, {"_project_conv", "conv_pw"}, {"_bn2", "bn2"}};

template <size_t N>
const char* lookup(const Rename (&table)[N], const std::string& from) {
  for (const Rename& r : table)
    if (from == r.from) return r.to;
  return nullptr;
}

// "_blocks.12._bn0.weight" -> {12, "_bn0", "weight"}.
struct BlockName {
  int64_t block;
  std::string layer, rest;
};
std::optional<BlockName> parse_block_name(const std::string& name) {
  const std::string prefix = "_blocks.";
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  const size_t dot1 = name.find('.', prefix.size());
  if (dot1 == std::string::npos || dot1 == prefix.size() || dot1 - prefix.size() > 6) return std::nullopt;
  int64_t block = 0;
  for (size_t i = prefix.size(); i < dot1; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    block = block * 10 + (name[i] - '0');
  }
  const size_t dot2 = name.find('.', dot1 + 1);
  if (dot2 == std::string::npos) return std::nullopt;
  return BlockName{block, name.substr(dot1 + 1, dot2 - dot1 - 1), name.substr(dot2 + 1)};
}

}  // namespace

bool looks_like_efficientnet_pytorch(const StateDict& dict) {
  bool stem = false, blocks = false;
  for (const auto& [name, t] : dict) {
    stem = stem || name == "_conv_stem.weight";
    blocks = blocks || name.rfind("_blocks.", 0) == 0;
  }
  return stem && blocks;
}

StateDict efficientnet_pytorch_to_timm(const StateDict& dict) {
  // Per block: whether it expands, and its output channels; then the stage layout.
  struct Block {
    bool expands = false;
    int64_t out_channels = -1;
    int64_t stage = 0, index = 0;
  };
  std::map<int64_t, Block> blocks;
  for (const auto& [name, t] : dict) {
    auto b = parse_block_name(name);
    if (!b) continue;
    Block& block = blocks[b->block];
    if (b->layer == "_expand_conv") block.expands = true;
    if (b->layer == "_project_conv" && b->rest == "weight") {
      EMBER_CHECK(t.dim() >= 1, "efficientnet_pytorch_to_timm: '", name, "' has shape ", t.shape_str(),
                  ", expected (out, in, 1, 1)");
      block.out_channels = t.size(0);
    }
  }
  int64_t stage = -1, index = 0, previous_out = -1;
  for (auto& [n, block] : blocks) {
    EMBER_CHECK(block.out_channels >= 0, "efficientnet_pytorch_to_timm: block ", n,
                " has no '_blocks.", n, "._project_conv.weight', so its stage is unknown");
    if (block.out_channels != previous_out) {
      ++stage;
      index = 0;
    }
    block.stage = stage;
    block.index = index++;
    previous_out = block.out_channels;
  }

  StateDict out;
  std::vector<std::string> unknown;
  for (const auto& [name, t] : dict) {
    const char* to = nullptr;
    std::string renamed;
    if (auto b = parse_block_name(name)) {
      const Block& block = blocks.at(b->block);
      to = block.expands ? lookup(kInvertedResidual, b->layer) : lookup(kDepthwiseSeparable, b->layer);
      if (to)
        renamed = "blocks." + std::to_string(block.stage) + "." + std::to_string(block.index) + "." + to + "." + b->rest;
    } else if (const size_t dot = name.find('.'); dot != std::string::npos) {
      to = lookup(kTop, name.substr(0, dot));
      if (to) renamed = std::string(to) + name.substr(dot);
    }
    if (!to) {
      unknown.push_back(name);
      continue;
    }
    out.emplace_back(std::move(renamed), t);
  }
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 8; ++i) list += (i ? ", '" : "'") + unknown[i] + "'";
    if (unknown.size() > 8) list += ", ... (" + std::to_string(unknown.size()) + " in all)";
    throw make_error("efficientnet_pytorch_to_timm: names outside the efficientnet_pytorch layout: ", list);
  }
  return out;
}

}  // namespace ember::nn
