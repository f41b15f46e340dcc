#include "nn/efficientnet.h"

#include <cmath>

#include "ember/ember.h"
#include "nn/init.h"

namespace ember::nn {

namespace {
// (repeats, kernel, stride, expand, out channels) per stage: the B0 architecture.
struct StageSpec {
  int64_t repeats, kernel, stride, expand, channels;
};
const StageSpec kStages[] = {{1, 3, 1, 1, 16},  {2, 3, 2, 6, 24},  {2, 5, 2, 6, 40}, {3, 3, 2, 6, 80},
                             {3, 5, 1, 6, 112}, {4, 5, 2, 6, 192}, {1, 3, 1, 6, 320}};

// timm's _init_weight_goog: conv N(0, √(2/fan_out)) with fan_out = k·k·out/groups; BN 1/0;
// linear U(±1/√out).
void init_conv(Conv2d& c, Generator* gen) {
  double fo = static_cast<double>(init::fan_out(c.weight.shape(), c.params.groups));
  init::normal_(c.weight.data(), 0.0, std::sqrt(2.0 / fo), gen);
  if (c.bias.defined()) init::zeros_(c.bias.data());
}
std::shared_ptr<Conv2d> make_conv(int64_t in, int64_t out, int64_t k, const Conv2dOptions& options) {
  auto c = std::make_shared<Conv2d>(in, out, k, options);
  init_conv(*c, options.gen);
  return c;
}
}  // namespace

EfficientNetConfig EfficientNetConfig::from_variant(const std::string& v, int64_t num_classes) {
  struct Row {
    const char* name;
    double w, d;
    int64_t r;
    double drop;
  };
  static const Row rows[] = {{"b0", 1.0, 1.0, 224, 0.2},    {"b1", 1.0, 1.1, 240, 0.2},    {"b2", 1.1, 1.2, 260, 0.3},
                             {"b3", 1.2, 1.4, 300, 0.3},    {"b4", 1.4, 1.8, 380, 0.4},    {"b5", 1.6, 2.2, 456, 0.4},
                             {"b6", 1.8, 2.6, 528, 0.5},    {"b7", 2.0, 3.1, 600, 0.5},    {"lite0", 1.0, 1.0, 224, 0.2},
                             {"lite1", 1.0, 1.1, 240, 0.2}, {"lite2", 1.1, 1.2, 260, 0.3}, {"lite3", 1.2, 1.4, 300, 0.3},
                             {"lite4", 1.4, 1.8, 380, 0.3}};
  for (const Row& r : rows) {
    if (v == r.name) {
      EfficientNetConfig c;
      c.variant = v;
      c.num_classes = num_classes;
      c.width = r.w;
      c.depth = r.d;
      c.resolution = r.r;
      c.dropout = r.drop;
      if (v.rfind("lite", 0) == 0) {
        c.act = Act::relu6;
        c.se_ratio = 0;
        c.fix_stem_head = c.fix_first_last = true;
        c.bn_eps = 1e-3;
        c.tf_same_padding = true;
      }
      return c;
    }
  }
  throw make_error("EfficientNet: unknown variant '", v, "' (expected b0 … b7, lite0 … lite4)");
}

int64_t round_channels(double channels, int64_t divisor) {
  int64_t v = std::max<int64_t>(divisor, static_cast<int64_t>(channels + divisor / 2.0) / divisor * divisor);
  if (v < 0.9 * channels) v += divisor;
  return v;
}

SqueezeExcite::SqueezeExcite(int64_t channels, int64_t reduced, Generator* gen) {
  conv_reduce = register_module("conv_reduce", make_conv(channels, reduced, 1, {.bias = true, .gen = gen}));
  conv_expand = register_module("conv_expand", make_conv(reduced, channels, 1, {.bias = true, .gen = gen}));
}

Variable SqueezeExcite::forward(const Variable& x) {
  Variable s = mean(x, {2, 3}, /*keepdim=*/true);  // (N, C, 1, 1)
  s = silu(conv_reduce->forward(s));
  s = sigmoid(conv_expand->forward(s));
  return mul(x, s);
}

MBConv::MBConv(int64_t in, int64_t out, int64_t kernel, const MBConvOptions& o)
    : depthwise_separable_(o.expand == 1), has_skip_(o.stride == 1 && in == out), act_(o.act) {
  const int64_t mid = in * o.expand;
  // timm: SE width = round(mid · se_ratio / expand) = round(0.25 · in).
  const int64_t reduced = std::max<int64_t>(1, std::llround(mid * (o.se_ratio / static_cast<double>(o.expand))));
  Generator* gen = o.gen;
  auto bn = [&](int64_t c) { return std::make_shared<BatchNorm2d>(c, o.bn_eps); };
  // a 1×1 conv, and the depthwise k×k one
  auto pointwise = [&](int64_t i, int64_t n) {
    return make_conv(i, n, 1, {.tf_same_padding = o.tf_same_padding, .gen = gen});
  };
  auto depthwise = [&](int64_t c) {
    return make_conv(c, c, kernel, {.stride = o.stride, .groups = c, .tf_same_padding = o.tf_same_padding, .gen = gen});
  };
  if (depthwise_separable_) {
    conv_dw = register_module("conv_dw", depthwise(in));
    bn1 = register_module("bn1", bn(in));
    if (o.se_ratio > 0) se = register_module("se", std::make_shared<SqueezeExcite>(in, reduced, gen));
    conv_pw = register_module("conv_pw", pointwise(in, out));
    bn2 = register_module("bn2", bn(out));
  } else {
    conv_pw = register_module("conv_pw", pointwise(in, mid));
    bn1 = register_module("bn1", bn(mid));
    conv_dw = register_module("conv_dw", depthwise(mid));
    bn2 = register_module("bn2", bn(mid));
    if (o.se_ratio > 0) se = register_module("se", std::make_shared<SqueezeExcite>(mid, reduced, gen));
    conv_pwl = register_module("conv_pwl", pointwise(mid, out));
    bn3 = register_module("bn3", bn(out));
  }
  // A child, so train()/eval() reach it. It draws from the default generator, which checkpoints save.
  if (has_skip_ && o.drop_path > 0) drop_path_ = register_module("drop_path", std::make_shared<DropPath>(o.drop_path));
}

Variable MBConv::forward(const Variable& x) {
  Variable h;
  if (depthwise_separable_) {
    h = bn1->forward_act(conv_dw->forward(x), act_);
    if (se) h = se->forward(h);
    h = bn2->forward(conv_pw->forward(h));
  } else {
    h = bn1->forward_act(conv_pw->forward(x), act_);
    h = bn2->forward_act(conv_dw->forward(h), act_);
    if (se) h = se->forward(h);
    h = bn3->forward(conv_pwl->forward(h));
  }
  if (!has_skip_) return h;
  if (drop_path_) h = drop_path_->forward(h);
  return add(h, x);
}

EfficientNet::EfficientNet(const EfficientNetConfig& c) : config_(c), gen_(c.seed) {
  Generator* gen = &gen_;
  const bool same = c.tf_same_padding;
  int64_t stem = c.fix_stem_head ? 32 : round_channels(32 * c.width);
  conv_stem = register_module(
      "conv_stem", make_conv(3, stem, 3, {.stride = c.cifar_stem ? 1 : 2, .tf_same_padding = same, .gen = gen}));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(stem, c.bn_eps));
  blocks = register_module("blocks", std::make_shared<Module>());

  const size_t stages = std::size(kStages);
  auto stage_repeats = [&](size_t si) {
    bool fixed = c.fix_first_last && (si == 0 || si + 1 == stages);
    return fixed ? kStages[si].repeats : static_cast<int64_t>(std::ceil(c.depth * kStages[si].repeats));
  };
  int64_t total = 0;
  for (size_t si = 0; si < stages; ++si) total += stage_repeats(si);
  int64_t in = stem, index = 0;
  for (size_t si = 0; si < stages; ++si) {
    const StageSpec& s = kStages[si];
    auto stage = std::make_shared<Module>();
    int64_t out = round_channels(s.channels * c.width);
    int64_t repeats = stage_repeats(si);
    for (int64_t r = 0; r < repeats; ++r, ++index) {
      double dp = c.drop_path * static_cast<double>(index) / static_cast<double>(total);
      auto block = std::make_shared<MBConv>(in, out, s.kernel,
                                            MBConvOptions{.stride = r == 0 ? s.stride : 1,
                                                          .expand = s.expand,
                                                          .se_ratio = c.se_ratio,
                                                          .drop_path = dp,
                                                          .act = c.act,
                                                          .bn_eps = c.bn_eps,
                                                          .tf_same_padding = same,
                                                          .gen = gen});
      stage->register_module(std::to_string(r), block);
      block_list_.push_back(block);
      in = out;
    }
    blocks->register_module(std::to_string(si), stage);
  }
  num_features_ = c.fix_stem_head ? 1280 : round_channels(1280 * c.width);
  conv_head = register_module("conv_head", make_conv(in, num_features_, 1, {.tf_same_padding = same, .gen = gen}));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(num_features_, c.bn_eps));
  // A child, so train()/eval() reach it; it draws from the default generator (checkpointed).
  dropout_ = register_module("dropout", std::make_shared<Dropout>(c.dropout));
  reset_classifier(c.num_classes);
}

void EfficientNet::reset_classifier(int64_t num_classes) {
  config_.num_classes = num_classes;
  auto head = std::make_shared<Linear>(num_features_, num_classes, LinearOptions{.gen = &gen_});
  double r = 1.0 / std::sqrt(static_cast<double>(num_classes));
  init::uniform_(head->weight.data(), -r, r, &gen_);
  init::zeros_(head->bias.data());
  if (classifier) {
    classifier->replace_with(*head);
  } else {
    classifier = register_module("classifier", head);
  }
}

Variable EfficientNet::forward_features(const Variable& x) {
  EMBER_CHECK(x.dim() == 4 && x.size(1) == 3, "EfficientNet: input must be (N, 3, H, W), got ", shape_str(x.shape()));
  Variable h = bn1->forward_act(conv_stem->forward(x), config_.act);
  for (auto& b : block_list_) h = b->forward(h);
  h = bn2->forward_act(conv_head->forward(h), config_.act);
  return flatten(mean(h, {2, 3}, /*keepdim=*/false), 1);
}

Variable EfficientNet::forward(const Variable& x) {
  return classifier->forward(dropout_->forward(forward_features(x)));
}

}  // namespace ember::nn
