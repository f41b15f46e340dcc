// EfficientNet B0–B7 (Tan & Le, 2019) built the way timm builds `efficientnet_bN`, with timm's
// module names so checkpoints move between the two:
//
//   conv_stem → bn1 (SiLU) → blocks.S.I (7 stages of MBConv) → conv_head (1×1) → bn2 (SiLU)
//   → global average pool → dropout → classifier
//
// MBConv (an inverted residual, timm's InvertedResidual):
//   conv_pw 1×1 expand (×e) → bn1, SiLU → conv_dw k×k depthwise (stride s) → bn2, SiLU
//   → se (squeeze-excite: mean over H, W → conv_reduce 1×1 → SiLU → conv_expand 1×1 → sigmoid,
//     scaling the channels; reduced width = 0.25 × the block's input channels)
//   → conv_pwl 1×1 project → bn3 → + input (drop-path) when s = 1 and channels match.
// The first stage (e = 1) is timm's DepthwiseSeparableConv: conv_dw → bn1 → se → conv_pw → bn2.
//
// Compound scaling (width, depth, resolution, dropout):
//   b0 1.0 1.0 224 0.2   b1 1.0 1.1 240 0.2   b2 1.1 1.2 260 0.3   b3 1.2 1.4 300 0.3
//   b4 1.4 1.8 380 0.4   b5 1.6 2.2 456 0.4   b6 1.8 2.6 528 0.5   b7 2.0 3.1 600 0.5
// channels round to multiples of 8 (never below 90% of the scaled width), stage repeats are
// ceil(depth × r), and the drop-path rate rises linearly from 0 over the blocks.
// The `cifar_stem` option makes the stem stride 1, for 32×32 inputs.
//
// EfficientNet-Lite0–4 (timm's tf_efficientnet_liteN, TensorFlow's mobile variant) is the same
// network with: no squeeze-excite, ReLU6 instead of SiLU, the stem (32) and head (1280) not
// scaled by width, the first and last stage's repeats not scaled by depth, BatchNorm eps 1e-3,
// TensorFlow "SAME" padding (the odd pixel of a stride-2 conv at the bottom/right), and inputs
// (pixel − 127) / 128 on the 0–255 scale.
//   lite0 1.0 1.0 224 0.2   lite1 1.0 1.1 240 0.2   lite2 1.1 1.2 260 0.3   lite3 1.2 1.4 300 0.3
//   lite4 1.4 1.8 380 0.3
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace ember::nn {

struct EfficientNetConfig {
  std::string variant = "b0";  // b0 … b7, lite0 … lite4
  int64_t num_classes = 1000;
  double width = 1.0, depth = 1.0;
  int64_t resolution = 224;
  double dropout = 0.2;
  double drop_path = 0.2;
  bool cifar_stem = false;
  // What tells Lite apart from B0–B7 (from_variant sets them):
  Act act = Act::silu;
  double se_ratio = 0.25;        // 0: no squeeze-excite
  bool fix_stem_head = false;    // stem 32 and head 1280 whatever the width
  bool fix_first_last = false;   // the first and last stage's repeats whatever the depth
  double bn_eps = 1e-5;
  bool tf_same_padding = false;  // TensorFlow "SAME" padding in every conv
  uint64_t seed = 0;
  // The table above for `variant` (throws on an unknown name).
  static EfficientNetConfig from_variant(const std::string& variant, int64_t num_classes = 1000);
};

int64_t round_channels(double channels, int64_t divisor = 8);

class SqueezeExcite : public UnaryModule {
 public:
  SqueezeExcite(int64_t channels, int64_t reduced, Generator* gen);
  Variable forward(const Variable& x) override;
  std::shared_ptr<Conv2d> conv_reduce, conv_expand;
};

struct MBConvOptions {
  int64_t stride = 1;
  int64_t expand = 1;       // mid channels = in · expand; 1: timm's DepthwiseSeparableConv layout
  double se_ratio = 0.25;   // squeeze-excite width = round(in · se_ratio); 0: none
  double drop_path = 0.0;   // stochastic depth on the residual branch (only with a skip)
  Act act = Act::silu;
  double bn_eps = 1e-5;
  bool tf_same_padding = false;
  Generator* gen = nullptr;
};

class MBConv : public UnaryModule {
 public:
  MBConv(int64_t in, int64_t out, int64_t kernel, const MBConvOptions& options = {});
  Variable forward(const Variable& x) override;
  bool has_skip() const { return has_skip_; }

 private:
  bool depthwise_separable_;  // expand == 1: timm's DepthwiseSeparableConv layout
  bool has_skip_;
  Act act_;
  std::shared_ptr<Conv2d> conv_pw, conv_dw, conv_pwl;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<SqueezeExcite> se;
  std::shared_ptr<DropPath> drop_path_;  // a child when the block has one
};

class EfficientNet : public UnaryModule {
 public:
  explicit EfficientNet(const EfficientNetConfig& config);
  Variable forward(const Variable& x) override;     // (N, 3, H, W) → (N, num_classes) logits
  Variable forward_features(const Variable& x);      // → (N, num_features) pooled
  const EfficientNetConfig& config() const { return config_; }
  int64_t num_features() const { return num_features_; }
  // The classifier's parameter prefix (for head-only training and head replacement).
  static constexpr const char* kHeadPrefix = "classifier";
  void reset_classifier(int64_t num_classes);

 private:
  EfficientNetConfig config_;
  int64_t num_features_;
  std::shared_ptr<Conv2d> conv_stem, conv_head;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Module> blocks;
  std::vector<std::shared_ptr<MBConv>> block_list_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<Linear> classifier;
  Generator gen_;
};

}  // namespace ember::nn
