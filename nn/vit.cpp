#include "nn/vit.h"

#include <cmath>

#include "ember/ember.h"
#include "nn/init.h"

namespace ember::nn {

ViTConfig ViTConfig::from_variant(const std::string& v, int64_t patch, int64_t image_size, int64_t num_classes) {
  ViTConfig c;
  c.variant = v;
  c.patch = patch;
  c.image_size = image_size;
  c.num_classes = num_classes;
  if (v == "tiny" || v == "ti") {
    c.dim = 192, c.heads = 3, c.depth = 12;
  } else if (v == "small" || v == "s") {
    c.dim = 384, c.heads = 6, c.depth = 12;
  } else if (v == "base" || v == "b") {
    c.dim = 768, c.heads = 12, c.depth = 12;
  } else if (v == "large" || v == "l") {
    c.dim = 1024, c.heads = 16, c.depth = 24;
  } else {
    throw make_error("ViT: unknown variant '", v, "' (expected tiny, small, base or large)");
  }
  EMBER_CHECK(patch > 0 && image_size % patch == 0, "ViT: image size ", image_size, " is not a multiple of patch ",
              patch);
  return c;
}

namespace {
// timm's init_weights_vit_timm: Linear weights trunc_normal(0.02), biases 0.
std::shared_ptr<Linear> make_linear(int64_t in, int64_t out, Generator* gen) {
  auto l = std::make_shared<Linear>(in, out, LinearOptions{.gen = gen});
  init::trunc_normal_(l->weight.data(), 0.02, -2.0, 2.0, gen);
  init::zeros_(l->bias.data());
  return l;
}
}  // namespace

MultiHeadAttention::MultiHeadAttention(int64_t dim, int64_t num_heads, Generator* gen) : heads(num_heads) {
  EMBER_CHECK(dim % heads == 0, "MultiHeadAttention: dim ", dim, " is not divisible by ", heads, " heads");
  qkv = register_module("qkv", make_linear(dim, 3 * dim, gen));
  proj = register_module("proj", make_linear(dim, dim, gen));
}

Variable MultiHeadAttention::forward(const Variable& x) {
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), hd = D / heads;
  Variable qkv_out = reshape(qkv->forward(x), {B, N, 3, heads, hd});  // (B, N, 3, H, hd)
  Variable o = scaled_dot_product_attention_qkv(qkv_out);              // (B, H, N, hd)
  o = reshape(transpose(o, 1, 2), {B, N, D});
  return proj->forward(o);
}

Mlp::Mlp(int64_t dim, int64_t hidden, Generator* gen) {
  fc1 = register_module("fc1", make_linear(dim, hidden, gen));
  fc2 = register_module("fc2", make_linear(hidden, dim, gen));
}

Variable Mlp::forward(const Variable& x) { return fc2->forward(gelu(fc1->forward(x))); }

TransformerBlock::TransformerBlock(int64_t dim, int64_t heads, const TransformerBlockOptions& o) {
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(dim, 1e-6));
  attn = register_module("attn", std::make_shared<MultiHeadAttention>(dim, heads, o.gen));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(dim, 1e-6));
  mlp = register_module("mlp", std::make_shared<Mlp>(dim, static_cast<int64_t>(dim * o.mlp_ratio), o.gen));
  // A child, so train()/eval() reach it. It draws from the default generator, which checkpoints save.
  if (o.drop_path > 0) drop_path_ = register_module("drop_path", std::make_shared<DropPath>(o.drop_path));
}

Variable TransformerBlock::forward(const Variable& x) {
  auto dp = [&](const Variable& h) { return drop_path_ ? drop_path_->forward(h) : h; };
  Variable h = add(x, dp(attn->forward(norm1->forward(x))));
  return add(h, dp(mlp->forward(norm2->forward(h))));
}

PatchEmbed::PatchEmbed(int64_t image_pixels, int64_t patch_pixels, int64_t dim, Generator* gen)
    : image_size(image_pixels), patch(patch_pixels), grid(image_pixels / patch_pixels) {
  proj = register_module(
      "proj", std::make_shared<Conv2d>(3, dim, patch, Conv2dOptions{.stride = patch, .padding = 0, .bias = true, .gen = gen}));
}

Variable PatchEmbed::forward(const Variable& x) {
  EMBER_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == image_size && x.size(3) == image_size,
              "ViT: input must be (N, 3, ", image_size, ", ", image_size, "), got ", shape_str(x.shape()));
  Variable p = proj->forward(x);                 // (B, D, g, g)
  return transpose(flatten(p, 2), 1, 2);         // (B, g·g, D)
}

ViT::ViT(const ViTConfig& c) : config_(c), gen_(c.seed) {
  Generator* gen = &gen_;
  patch_embed = register_module("patch_embed", std::make_shared<PatchEmbed>(c.image_size, c.patch, c.dim, gen));
  int64_t tokens = patch_embed->grid * patch_embed->grid + 1;
  Tensor cls = empty({1, 1, c.dim}), pos = empty({1, tokens, c.dim});
  init::normal_(cls, 0.0, 1e-6, gen);
  init::trunc_normal_(pos, 0.02, -2.0, 2.0, gen);
  cls_token = register_parameter("cls_token", cls);
  pos_embed = register_parameter("pos_embed", pos);
  auto blocks = register_module("blocks", std::make_shared<Module>());
  for (int64_t i = 0; i < c.depth; ++i) {
    double dp = c.depth > 1 ? c.drop_path * static_cast<double>(i) / static_cast<double>(c.depth - 1) : 0.0;
    TransformerBlockOptions options{.mlp_ratio = c.mlp_ratio, .drop_path = dp, .gen = gen};
    auto b = std::make_shared<TransformerBlock>(c.dim, c.heads, options);
    blocks->register_module(std::to_string(i), b);
    block_list_.push_back(b);
  }
  norm = register_module("norm", std::make_shared<LayerNorm>(c.dim, 1e-6));
  // A child, so train()/eval() reach it; it draws from the default generator (checkpointed).
  head_drop_ = register_module("head_drop", std::make_shared<Dropout>(c.dropout));
  reset_classifier(c.num_classes);
}

void ViT::reset_classifier(int64_t num_classes) {
  config_.num_classes = num_classes;
  auto fresh = make_linear(config_.dim, num_classes, &gen_);
  if (head) {
    head->replace_with(*fresh);
  } else {
    head = register_module("head", fresh);
  }
}

Variable ViT::forward_features(const Variable& x) {
  Variable t = patch_embed->forward(x);  // (B, N, D)
  const int64_t B = t.size(0);
  Variable cls = expand(cls_token, {B, 1, config_.dim});
  Variable h = add(cat({cls, t}, 1), pos_embed);  // (B, 1 + N, D)
  for (auto& b : block_list_) h = b->forward(h);
  h = norm->forward(h);
  return select(h, 1, 0);  // the class token
}

Variable ViT::forward(const Variable& x) {
  return head->forward(head_drop_->forward(forward_features(x)));
}

Tensor resize_pos_embed(const Tensor& pos_embed, int64_t new_grid) {
  EMBER_CHECK(pos_embed.dim() == 3 && pos_embed.size(0) == 1, "resize_pos_embed: expected (1, 1 + g², D), got ",
              pos_embed.shape_str());
  const int64_t n = pos_embed.size(1) - 1, D = pos_embed.size(2);
  const int64_t g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  EMBER_CHECK(g * g == n, "resize_pos_embed: ", n, " grid tokens is not a square grid");
  if (g == new_grid) return pos_embed;
  Tensor grid = pos_embed.narrow(1, 1, n).reshape({1, g, g, D}).permute({0, 3, 1, 2}).contiguous();  // (1, D, g, g)
  Tensor resized = interpolate_bilinear(grid, new_grid, new_grid, false);                          // (1, D, G, G)
  Tensor tokens = resized.permute({0, 2, 3, 1}).reshape({1, new_grid * new_grid, D});
  return cat({pos_embed.narrow(1, 0, 1), tokens}, 1);
}

}  // namespace ember::nn
