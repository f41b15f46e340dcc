// Layers, blocks and models: shapes, timm's names, parameter counts, finite-difference gradients.
#include "nn/efficientnet.h"
#include "nn/layers.h"
#include "nn/vit.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::nn;
using ember::testing::gradcheck;
using ember::testing::random_tensor;

TEST(Models, EfficientNetB0HasTimmParameterCount) {
  EfficientNet m(EfficientNetConfig::from_variant("b0", 1000));
  EXPECT_EQ(m.num_parameters(), 5288548);  // timm efficientnet_b0: 5.29M
}

TEST(Models, EfficientNetUsesTimmNames) {
  EfficientNet m(EfficientNetConfig::from_variant("b0", 10));
  for (const char* n : {"conv_stem.weight", "bn1.weight", "bn1.running_var", "bn1.num_batches_tracked",
                        "blocks.0.0.conv_dw.weight", "blocks.0.0.se.conv_reduce.weight", "blocks.0.0.se.conv_expand.bias",
                        "blocks.0.0.conv_pw.weight", "blocks.0.0.bn2.weight", "blocks.1.0.conv_pw.weight",
                        "blocks.1.0.conv_dw.weight", "blocks.1.0.conv_pwl.weight", "blocks.1.0.bn3.running_mean",
                        "blocks.6.0.conv_pwl.weight", "conv_head.weight", "bn2.bias", "classifier.weight",
                        "classifier.bias"})
    EXPECT_TRUE(ember::testing::has_state(m, n)) << n;
  EXPECT_FALSE(ember::testing::has_state(m, "blocks.7.0.conv_pw.weight"));
  // B0 stage repeats 1,2,2,3,3,4,1 and SE width 0.25 × block input
  EXPECT_TRUE(ember::testing::has_state(m, "blocks.5.3.conv_pw.weight"));
  EXPECT_FALSE(ember::testing::has_state(m, "blocks.5.4.conv_pw.weight"));
  EXPECT_EQ(m.parameter("blocks.1.0.se.conv_reduce.weight").shape(), (Shape{4, 96, 1, 1}));  // round(16 × 0.25)
  EXPECT_EQ(m.parameter("blocks.0.0.se.conv_reduce.weight").shape(), (Shape{8, 32, 1, 1}));
}

TEST(Models, EfficientNetCompoundScaling) {
  auto b4 = EfficientNetConfig::from_variant("b4");
  EXPECT_EQ(b4.resolution, 380);
  EXPECT_DOUBLE_EQ(b4.dropout, 0.4);
  EXPECT_EQ(round_channels(32 * 1.4), 48);
  EXPECT_EQ(round_channels(1280 * 1.4), 1792);
  EXPECT_EQ(round_channels(16 * 1.1), 16);
  EXPECT_EQ(round_channels(24 * 1.1), 24);
  EXPECT_EQ(round_channels(40 * 1.1), 48);
  EfficientNet m(EfficientNetConfig::from_variant("b2", 1000));
  EXPECT_EQ(m.num_parameters(), 9109994);  // timm efficientnet_b2: 9.11M
  EXPECT_THROW(EfficientNetConfig::from_variant("b9"), Error);
}

TEST(Models, ViTB16HasTimmParameterCount) {
  ViT m(ViTConfig::from_variant("base", 16, 224, 1000));
  EXPECT_EQ(m.num_parameters(), 86567656);  // timm vit_base_patch16_224: 86.6M
  for (const char* n : {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.norm1.weight",
                        "blocks.3.attn.qkv.weight", "blocks.11.attn.proj.bias", "blocks.5.mlp.fc1.weight",
                        "blocks.5.mlp.fc2.bias", "norm.weight", "head.weight"})
    EXPECT_TRUE(ember::testing::has_state(m, n)) << n;
  EXPECT_EQ(m.parameter("pos_embed").shape(), (Shape{1, 197, 768}));
}

TEST(Models, SmallModelsRunForwardAndBackward) {
  EfficientNetConfig ec = EfficientNetConfig::from_variant("b0", 20);
  ec.width = 0.25;
  ec.depth = 0.34;
  ec.cifar_stem = true;
  EfficientNet e(ec);
  Variable x(random_tensor({2, 3, 32, 32}, DType::f32));
  Variable y = e.forward(x);
  EXPECT_EQ(y.shape(), (Shape{2, 20}));
  sum(y).backward();
  EXPECT_TRUE(e.parameter("conv_stem.weight").grad().defined());

  ViTConfig vc = ViTConfig::from_variant("tiny", 4, 32, 20);
  vc.depth = 2;
  ViT v(vc);
  EXPECT_EQ(v.parameter("pos_embed").shape(), (Shape{1, 65, 192}));
  Variable z = v.forward(x);
  EXPECT_EQ(z.shape(), (Shape{2, 20}));
  sum(z).backward();
  EXPECT_TRUE(v.parameter("blocks.1.attn.qkv.weight").grad().defined());
  EXPECT_TRUE(v.parameter("cls_token").grad().defined());
}

TEST(Models, ResizePosEmbedKeepsClassTokenAndInterpolatesGrid) {
  Tensor pe = random_tensor({1, 1 + 16, 3}, DType::f32);
  Tensor r = resize_pos_embed(pe, 2);
  EXPECT_EQ(r.shape(), (Shape{1, 5, 3}));
  EXPECT_TRUE(ember::testing::all_close(r.narrow(1, 0, 1), pe.narrow(1, 0, 1)));
  // 4 → 2 with align_corners=false averages each 2×2 block exactly.
  auto v = ember::testing::values(pe);
  auto rv = ember::testing::values(r);
  for (int d = 0; d < 3; ++d) {
    double expect = (v[(1 + 0) * 3 + d] + v[(1 + 1) * 3 + d] + v[(1 + 4) * 3 + d] + v[(1 + 5) * 3 + d]) / 4;
    EXPECT_NEAR(rv[3 + d], expect, 1e-6);
  }
}

// Finite differences through whole blocks, in float64, with BatchNorm in training mode.
TEST(ModuleGradients, MBConvWithSqueezeExcite) {
  Generator gen(3);
  MBConv block(4, 4, 3, {.expand = 2, .se_ratio = 0.25, .gen = &gen});
  block.to(DType::f64);
  block.train();
  Variable x(random_tensor({2, 4, 5, 5}, DType::f64), true);
  auto params = block.parameters();
  std::vector<Variable> inputs{x, params[0], params[3]};
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return block.forward(x); }, inputs, 1e-6, 1e-3, 1e-6));
}

TEST(ModuleGradients, DepthwiseSeparableStride2) {
  Generator gen(4);
  MBConv block(3, 5, 3, {.stride = 2, .se_ratio = 0.25, .gen = &gen});
  block.to(DType::f64);
  Variable x(random_tensor({2, 3, 6, 6}, DType::f64), true);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return block.forward(x); }, {x}, 1e-6, 1e-3, 1e-6));
}

TEST(ModuleGradients, TransformerBlock) {
  Generator gen(5);
  TransformerBlock block(8, 2, {.mlp_ratio = 2.0, .gen = &gen});
  block.to(DType::f64);
  Variable x(random_tensor({2, 5, 8}, DType::f64), true);
  auto params = block.parameters();
  std::vector<Variable> inputs{x};
  for (auto& p : params) inputs.push_back(p);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return block.forward(x); }, inputs, 1e-6, 1e-3, 1e-6));
}

TEST(ModuleGradients, LinearConvAndNormLayers) {
  Generator gen(6);
  Linear lin(3, 4, {.gen = &gen});
  lin.to(DType::f64);
  Variable x(random_tensor({2, 5, 3}, DType::f64), true);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return lin.forward(x); }, {x, lin.weight, lin.bias}));
  Conv2d conv(2, 4, 3, {.stride = 2, .padding = 1, .groups = 2, .bias = true, .gen = &gen});
  conv.to(DType::f64);
  Variable img(random_tensor({1, 2, 5, 5}, DType::f64), true);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return conv.forward(img); }, {img, conv.weight, conv.bias}));
  BatchNorm2d bn(2);
  bn.to(DType::f64);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return bn.forward(img); }, {img, bn.weight, bn.bias}));
  LayerNorm ln(3);
  ln.to(DType::f64);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return ln.forward(x); }, {x, ln.weight, ln.bias}));
}

TEST(Layers, BatchNormStatsFreezeLeavesRunningStatsAlone) {
  BatchNorm2d bn(3);
  Variable x(random_tensor({4, 3, 2, 2}, DType::f32, 0.0, 2.0));
  bn.forward(x);
  auto after_first = ember::testing::values(bn.running_mean);
  EXPECT_NE(after_first[0], 0.0);
  set_batch_norm_stats_frozen(bn, true);
  bn.forward(x);
  EXPECT_EQ(ember::testing::values(bn.running_mean), after_first);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1.0);
  set_batch_norm_stats_frozen(bn, false);
  bn.forward(x);
  EXPECT_NE(ember::testing::values(bn.running_mean), after_first);
}

TEST(Layers, DropoutAndDropPathAreIdentityInEval) {
  Dropout d(0.5);
  DropPath p(0.5);
  d.eval();
  p.eval();
  Tensor t = random_tensor({4, 8}, DType::f32);
  EXPECT_TRUE(ember::testing::all_close(d.forward(Variable(t)).data(), t, 0, 0));
  EXPECT_TRUE(ember::testing::all_close(p.forward(Variable(t)).data(), t, 0, 0));
  EXPECT_THROW(Dropout(1.0), Error);
  EXPECT_THROW(Linear(0, 3), Error);
  Linear l(3, 2);
  EXPECT_THROW(l.forward(Variable(zeros({2, 4}))), Error);
}

TEST(Layers, DropoutAndDropPathAreChildrenThatTrainAndEvalReach) {
  ViTConfig vc = ViTConfig::from_variant("tiny", 4, 8, 3);
  vc.dim = 16, vc.heads = 2, vc.depth = 3, vc.dropout = 0.5, vc.drop_path = 0.5;
  ViT vit(vc);
  EfficientNetConfig ec = EfficientNetConfig::from_variant("b0", 3);
  ec.width = 0.25, ec.dropout = 0.5, ec.drop_path = 0.5;  // depth 1: blocks repeat, so some have a skip
  EfficientNet effnet(ec);
  for (Module* model : {static_cast<Module*>(&vit), static_cast<Module*>(&effnet)}) {
    std::vector<std::string> droppers;
    auto modes = [&] {
      std::vector<bool> m;
      for (auto& [name, module] : model->named_modules())
        if (dynamic_cast<Dropout*>(module) || dynamic_cast<DropPath*>(module)) m.push_back(module->is_training());
      return m;
    };
    for (auto& [name, module] : model->named_modules())
      if (dynamic_cast<Dropout*>(module) || dynamic_cast<DropPath*>(module)) droppers.push_back(name);
    ASSERT_GE(droppers.size(), 2u);  // the head's dropout and at least one drop path
    model->eval();
    EXPECT_EQ(modes(), std::vector<bool>(droppers.size(), false));
    model->train();
    EXPECT_EQ(modes(), std::vector<bool>(droppers.size(), true));
  }
  EXPECT_TRUE(ember::testing::has_state(vit, "blocks.2.mlp.fc2.weight"));
  // named children, holding no state: the state dict's names are unchanged
  for (auto& [name, t] : vit.state_dict()) EXPECT_EQ(name.find("drop"), std::string::npos) << name;
  // in eval, a forward is deterministic: the droppers are off
  vit.eval();
  Tensor x = random_tensor({2, 3, 8, 8}, DType::f32);
  EXPECT_TRUE(ember::testing::all_close(vit.forward(Variable(x)).data(), vit.forward(Variable(x)).data(), 0, 0));
}

TEST(Models, ResetClassifierReplacesTheHeadInPlace) {
  EfficientNetConfig ec = EfficientNetConfig::from_variant("b0", 10);
  ec.width = 0.25;
  ec.depth = 0.34;
  ec.cifar_stem = true;
  EfficientNet e(ec);
  auto names_before = e.state_dict().size();
  Variable head_w = e.parameter("classifier.weight");
  e.reset_classifier(7);
  EXPECT_EQ(e.state_dict().size(), names_before);
  EXPECT_EQ(e.parameter("classifier.weight").shape(), (Shape{7, e.num_features()}));
  EXPECT_TRUE(head_w.same(e.parameter("classifier.weight")));  // the same Variable, new data
  EXPECT_EQ(e.forward(Variable(random_tensor({2, 3, 32, 32}, DType::f32))).shape(), (Shape{2, 7}));

  ViTConfig vc = ViTConfig::from_variant("tiny", 8, 32, 10);
  vc.depth = 1;
  ViT v(vc);
  v.reset_classifier(3);
  EXPECT_EQ(v.parameter("head.bias").shape(), (Shape{3}));
  EXPECT_EQ(v.forward(Variable(random_tensor({1, 3, 32, 32}, DType::f32))).shape(), (Shape{1, 3}));
}
