// Vision Transformer (Dosovitskiy et al., 2021) built the way timm builds
// `vit_{tiny,small,base,large}_patch{P}_{R}`, with timm's names:
//
//   patch_embed.proj (P×P conv, stride P) → flatten to tokens → prepend cls_token
//   → + pos_embed → blocks.i (pre-norm transformer) → norm → head(token 0)
//
// TransformerBlock:  x = x + drop_path(attn(norm1(x)));  x = x + drop_path(mlp(norm2(x)))
// MultiHeadAttention: qkv = Linear(D, 3D) (fused), split into heads (B, H, N, D/H),
//   softmax(QKᵀ/√d)·V by the scaled_dot_product_attention op, heads merged, proj = Linear(D, D).
// Mlp: fc1 Linear(D, 4D) → GELU → fc2 Linear(4D, D).
// LayerNorm ε = 1e-6. Sizes: Ti 192/3 heads/12 deep, S 384/6/12, B 768/12/12, L 1024/16/24.
// A checkpoint's pos_embed for another grid is resized bilinearly when loaded (load_vit_state).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace ember::nn {

struct ViTConfig {
  std::string variant = "base";  // tiny | small | base | large
  int64_t image_size = 224, patch = 16, num_classes = 1000;
  int64_t dim = 768, depth = 12, heads = 12;
  double mlp_ratio = 4.0;
  double dropout = 0.0, drop_path = 0.1;
  uint64_t seed = 0;
  static ViTConfig from_variant(const std::string& variant, int64_t patch = 16, int64_t image_size = 224,
                                int64_t num_classes = 1000);
};

class MultiHeadAttention : public UnaryModule {
 public:
  MultiHeadAttention(int64_t dim, int64_t heads, Generator* gen);
  Variable forward(const Variable& x) override;  // (B, N, D) → (B, N, D)
  std::shared_ptr<Linear> qkv, proj;
  int64_t heads;
};

class Mlp : public UnaryModule {
 public:
  Mlp(int64_t dim, int64_t hidden, Generator* gen);
  Variable forward(const Variable& x) override;
  std::shared_ptr<Linear> fc1, fc2;
};

struct TransformerBlockOptions {
  double mlp_ratio = 4.0;  // the MLP's hidden width = dim · mlp_ratio
  double drop_path = 0.0;  // stochastic depth on both residual branches
  Generator* gen = nullptr;
};

class TransformerBlock : public UnaryModule {
 public:
  TransformerBlock(int64_t dim, int64_t heads, const TransformerBlockOptions& options = {});
  Variable forward(const Variable& x) override;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiHeadAttention> attn;
  std::shared_ptr<Mlp> mlp;

 private:
  std::shared_ptr<DropPath> drop_path_;  // a child when drop_path > 0
};

class PatchEmbed : public UnaryModule {
 public:
  PatchEmbed(int64_t image_size, int64_t patch, int64_t dim, Generator* gen);
  Variable forward(const Variable& x) override;  // (B, 3, H, W) → (B, (H/P)·(W/P), D)
  std::shared_ptr<Conv2d> proj;
  int64_t image_size, patch, grid;
};

class ViT : public UnaryModule {
 public:
  explicit ViT(const ViTConfig& config);
  Variable forward(const Variable& x) override;  // (B, 3, R, R) → (B, num_classes)
  Variable forward_features(const Variable& x);   // → (B, D): the class token after the final norm
  const ViTConfig& config() const { return config_; }
  static constexpr const char* kHeadPrefix = "head";
  void reset_classifier(int64_t num_classes);

  std::shared_ptr<PatchEmbed> patch_embed;
  Variable cls_token, pos_embed;

 private:
  ViTConfig config_;
  std::vector<std::shared_ptr<TransformerBlock>> block_list_;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Dropout> head_drop_;  // a child
  std::shared_ptr<Linear> head;
  Generator gen_;
};

// pos_embed (1, 1 + g0², D) resized to (1, 1 + g1², D): the class token's row kept, the grid
// resized bilinearly (align_corners false).
Tensor resize_pos_embed(const Tensor& pos_embed, int64_t new_grid);

}  // namespace ember::nn
