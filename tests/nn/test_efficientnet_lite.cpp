// EfficientNet-Lite (timm's tf_efficientnet_liteN) and what it needs: TensorFlow "SAME" padding,
// ReLU6, and BatchNorm layers held in evaluation mode for a frozen body.
#include <cmath>

#include "nn/efficientnet.h"
#include "nn/layers.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::nn;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::random_tensor;

namespace {

// Independent reference of TF "SAME": zero-pad x (N, C, H, W) by explicit loops, then a plain
// convolution with no padding.
Tensor tf_same_reference(const Tensor& x, const Tensor& w, int64_t stride) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), k = w.size(2);
  auto total = [&](int64_t n) {
    int64_t out = (n + stride - 1) / stride;
    return std::max<int64_t>((out - 1) * stride + k - n, 0);
  };
  const int64_t th = total(H), tw = total(W), top = th / 2, left = tw / 2;
  Tensor padded = zeros({N, C, H + th, W + tw}, DType::f64);
  auto xv = ember::testing::values(x);
  double* p = padded.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j)
          p[((n * C + c) * (H + th) + i + top) * (W + tw) + j + left] = xv[((n * C + c) * H + i) * W + j];
  return conv2d(padded, w, Tensor(), Conv2dParams::square(stride, 0, 1, w.size(1) == C ? 1 : C));
}
}  // namespace

TEST(EfficientNetLite, ParameterCountsEqualTimm) {
  // timm 1.0 create_model("tf_efficientnet_liteN") with 1000 classes.
  const std::pair<const char*, int64_t> expected[] = {
      {"lite0", 4652008}, {"lite1", 5416680}, {"lite2", 6092072}, {"lite3", 8197096}, {"lite4", 13006568}};
  for (auto& [variant, count] : expected) {
    EfficientNet m(EfficientNetConfig::from_variant(variant, 1000));
    EXPECT_EQ(m.num_parameters(), count) << variant;
  }
  EXPECT_EQ(EfficientNetConfig::from_variant("lite3").resolution, 300);
  EXPECT_EQ(EfficientNetConfig::from_variant("lite4").resolution, 380);
}

TEST(EfficientNetLite, TimmNamesNoSqueezeExciteFixedStemAndHead) {
  EfficientNet m(EfficientNetConfig::from_variant("lite2", 1000));
  for (const char* n : {"conv_stem.weight", "bn1.running_var", "blocks.0.0.conv_dw.weight", "blocks.0.0.bn1.weight",
                        "blocks.0.0.conv_pw.weight", "blocks.0.0.bn2.num_batches_tracked", "blocks.1.0.conv_pw.weight",
                        "blocks.5.4.conv_pwl.weight", "blocks.6.0.bn3.bias", "conv_head.weight", "bn2.running_mean",
                        "classifier.bias"})
    EXPECT_TRUE(ember::testing::has_state(m, n)) << n;
  // fix_first_last: the first and last stages keep 1 block; no SE anywhere.
  EXPECT_FALSE(ember::testing::has_state(m, "blocks.0.1.conv_dw.weight"));
  EXPECT_FALSE(ember::testing::has_state(m, "blocks.6.1.conv_pw.weight"));
  EXPECT_FALSE(ember::testing::has_state(m, "blocks.5.5.conv_pw.weight"));
  EXPECT_FALSE(ember::testing::has_state(m, "blocks.1.0.se.conv_reduce.weight"));
  EXPECT_EQ(m.parameter("conv_stem.weight").shape(), (Shape{32, 3, 3, 3}));      // stem not scaled
  EXPECT_EQ(m.parameter("conv_head.weight").shape(), (Shape{1280, 352, 1, 1}));  // head not scaled
  EXPECT_EQ(m.state_dict().size(), 386u);  // timm's tf_efficientnet_lite2 state dict
}

TEST(EfficientNetLite, TfSamePadsPutTheOddPixelAtTheEnd) {
  EXPECT_EQ(tf_same_pads(224, 3, 2, 1), (std::pair<int64_t, int64_t>{0, 1}));
  EXPECT_EQ(tf_same_pads(112, 5, 2, 1), (std::pair<int64_t, int64_t>{1, 2}));
  EXPECT_EQ(tf_same_pads(7, 3, 2, 1), (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(tf_same_pads(9, 5, 1, 1), (std::pair<int64_t, int64_t>{2, 2}));
  EXPECT_EQ(tf_same_pads(8, 1, 1, 1), (std::pair<int64_t, int64_t>{0, 0}));
}

TEST(EfficientNetLite, TfSameConvMatchesExplicitPaddingReference) {
  Generator gen(11);
  for (int64_t stride : {1, 2})
    for (int64_t k : {3, 5})
      for (int64_t size : {6, 7, 8})
        for (bool depthwise : {false, true}) {
          const int64_t C = 3;
          Conv2d conv(C, depthwise ? C : 4, k,
                      {.stride = stride, .groups = depthwise ? C : 1, .tf_same_padding = true, .gen = &gen});
          conv.to(DType::f64);
          Tensor x = random_tensor({2, C, size, size + 1}, DType::f64);
          Tensor got = conv.forward(Variable(x)).data();
          Tensor want = tf_same_reference(x, conv.weight.data(), stride);
          EXPECT_TRUE(all_close(got, want, 1e-12, 1e-12))
              << "stride " << stride << " k " << k << " size " << size << " depthwise " << depthwise;
        }
}

TEST(EfficientNetLite, TfSameConvAndRelu6Gradients) {
  Generator gen(12);
  Conv2d conv(2, 3, 3, {.stride = 2, .bias = true, .tf_same_padding = true, .gen = &gen});
  conv.to(DType::f64);
  Variable x(random_tensor({2, 2, 6, 5}, DType::f64), true);
  auto f = [&](const std::vector<Variable>&) { return apply_act(Act::relu6, mul(conv.forward(x), 4.0)); };
  EXPECT_TRUE(gradcheck(f, {x, conv.weight, conv.bias}, 1e-6, 1e-3, 1e-6));
}

TEST(EfficientNetLite, Relu6Clamps) {
  Tensor x = from_vector(std::vector<double>{-3.0, 0.5, 5.9, 6.5, 100.0}, {5});
  EXPECT_TRUE(all_close(apply_act(Act::relu6, Variable(x)).data(), std::vector<double>{0.0, 0.5, 5.9, 6.0, 6.0}));
  EXPECT_EQ(act_from_name("relu6"), Act::relu6);
}

TEST(EfficientNetLite, LiteBlockGradients) {
  // A Lite inverted residual: ReLU6, no SE, TF padding, stride 2, BatchNorm eps 1e-3 in training.
  Generator gen(13);
  MBConv block(3, 4, 3,
               {.stride = 2, .expand = 2, .se_ratio = 0.0, .act = Act::relu6, .bn_eps = 1e-3, .tf_same_padding = true,
                .gen = &gen});
  block.to(DType::f64);
  block.train();
  Variable x(random_tensor({2, 3, 6, 6}, DType::f64), true);
  auto params = block.parameters();
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>&) { return block.forward(x); }, {x, params[0], params[3]},
                        1e-6, 1e-3, 1e-6));
}

TEST(EfficientNetLite, SmallLiteTrainsForwardAndBackward) {
  EfficientNetConfig c = EfficientNetConfig::from_variant("lite0", 10);
  c.depth = 0.3;
  EfficientNet m(c);
  Variable y = m.forward(Variable(random_tensor({2, 3, 48, 48}, DType::f32)));
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
  sum(y).backward();
  EXPECT_TRUE(m.parameter("conv_stem.weight").grad().defined());
  EXPECT_TRUE(m.parameter("blocks.6.0.conv_pwl.weight").grad().defined());
}

TEST(FrozenBody, BatchNormInEvalModeUsesAndKeepsRunningStatistics) {
  Generator gen(14);
  Module root;
  auto bn = root.register_module("bn", std::make_shared<BatchNorm2d>(3, 1e-3));
  bn->running_mean.copy_(random_tensor({3}, DType::f32));
  bn->running_var.copy_(add(abs(random_tensor({3}, DType::f32)), 0.5));
  Tensor mean0 = bn->running_mean.clone(), var0 = bn->running_var.clone();
  root.train();
  set_batch_norm_eval(root, true);
  EXPECT_FALSE(bn->is_training());
  Tensor x = random_tensor({4, 3, 2, 2}, DType::f32);
  Tensor y = bn->forward(Variable(x)).data();
  EXPECT_TRUE(all_close(bn->running_mean, mean0, 0, 0));  // nothing updated
  EXPECT_TRUE(all_close(bn->running_var, var0, 0, 0));
  auto xv = ember::testing::values(x), yv = ember::testing::values(y), mv = ember::testing::values(mean0),
       vv = ember::testing::values(var0);
  for (size_t i = 0; i < xv.size(); ++i) {
    size_t c = (i / 4) % 3;
    EXPECT_NEAR(yv[i], (xv[i] - mv[c]) / std::sqrt(vv[c] + 1e-3), 1e-5);  // γ = 1, β = 0
  }
  set_batch_norm_eval(root, false);
  EXPECT_TRUE(bn->is_training());
}

// timm's --bn-momentum: every BatchNorm of the model gets it, and the running statistics then move
// by that fraction towards the batch's (mean, unbiased variance), computed here by hand.
TEST(BatchNormMomentum, SetsEveryLayerAndTheRunningStatisticsFollowIt) {
  EfficientNetConfig c = EfficientNetConfig::from_variant("lite0", 10);
  c.depth = 0.3;
  EfficientNet net(c);
  int64_t layers = 0;
  for (auto& [name, m] : net.named_modules()) layers += dynamic_cast<BatchNorm2d*>(m) != nullptr;
  ASSERT_GT(layers, 10);
  EXPECT_EQ(set_batch_norm_momentum(net, 0.01), layers);
  for (auto& [name, m] : net.named_modules()) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      EXPECT_EQ(bn->momentum, 0.01) << name;
    }
  }

  Module root;
  auto bn = root.register_module("bn", std::make_shared<BatchNorm2d>(3, 1e-3));
  bn->running_mean.copy_(random_tensor({3}, DType::f32));
  bn->running_var.copy_(add(abs(random_tensor({3}, DType::f32)), 0.5));
  const auto mean0 = ember::testing::values(bn->running_mean), var0 = ember::testing::values(bn->running_var);
  EXPECT_EQ(set_batch_norm_momentum(root, 0.25), 1);
  root.train();
  Tensor x = random_tensor({4, 3, 2, 2}, DType::f32);
  bn->forward(Variable(x));
  const auto xv = ember::testing::values(x), mean1 = ember::testing::values(bn->running_mean),
             var1 = ember::testing::values(bn->running_var);
  for (size_t ch = 0; ch < 3; ++ch) {
    std::vector<double> v;  // channel ch of every sample
    for (size_t i = 0; i < xv.size(); ++i)
      if ((i / 4) % 3 == ch) v.push_back(xv[i]);
    double m = 0, ss = 0;
    for (double e : v) m += e;
    m /= static_cast<double>(v.size());
    for (double e : v) ss += (e - m) * (e - m);
    const double unbiased = ss / static_cast<double>(v.size() - 1);
    EXPECT_NEAR(mean1[ch], 0.75 * mean0[ch] + 0.25 * m, 1e-5) << ch;
    EXPECT_NEAR(var1[ch], 0.75 * var0[ch] + 0.25 * unbiased, 1e-5) << ch;
  }
  for (double bad : {0.0, -0.5, 1.5, std::nan("")})
    EXPECT_THROW(
        {
          try {
            set_batch_norm_momentum(root, bad);
          } catch (const std::exception& e) {
            EXPECT_NE(std::string(e.what()).find("BatchNorm momentum must be in (0, 1]"), std::string::npos) << e.what();
            throw;
          }
        },
        std::exception);
  EXPECT_EQ(bn->momentum, 0.25);  // a refused value changes nothing
}
