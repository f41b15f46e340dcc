// nn::Module: dotted naming, state dicts, load reports, freezing, parameter groups, moves.
#include <algorithm>

#include "nn/module.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

uint64_t next_seed() {
  static uint64_t seed = 100;
  return ++seed;
}

// y = x · weight + bias, elementwise over (C).
struct Affine : nn::UnaryModule {
  Variable weight, bias;
  explicit Affine(int64_t c, bool with_bias = true) {
    weight = register_parameter("weight", random_tensor({c, c}, DType::f32, -1, 1, next_seed()));
    if (with_bias) bias = register_parameter("bias", random_tensor({c}, DType::f32, -1, 1, next_seed()));
  }
  Variable forward(const Variable& x) override { return bias.defined() ? x * 2.0 + bias : x * 2.0; }
};

// A BatchNorm-shaped module: 1-D weight and bias, a float running mean and an integer counter.
struct Norm : nn::UnaryModule {
  Variable weight, bias;
  Tensor& running_mean;
  Tensor& num_batches_tracked;
  explicit Norm(int64_t c)
      : running_mean(register_buffer("running_mean", random_tensor({c}, DType::f32, -1, 1, next_seed()))),
        num_batches_tracked(register_buffer("num_batches_tracked", scalar_tensor(3, DType::i64))) {
    weight = register_parameter("weight", random_tensor({c}, DType::f32, -1, 1, next_seed()));
    bias = register_parameter("bias", random_tensor({c}, DType::f32, -1, 1, next_seed()));
  }
  Variable forward(const Variable& x) override { return x + 1.0; }
};

struct Block : nn::UnaryModule {
  std::shared_ptr<Affine> conv_pw;
  std::shared_ptr<Norm> bn1;
  explicit Block(int64_t c) {
    conv_pw = register_module("conv_pw", std::make_shared<Affine>(c, /*with_bias=*/false));
    bn1 = register_module("bn1", std::make_shared<Norm>(c));
  }
  Variable forward(const Variable& x) override { return bn1->forward(conv_pw->forward(x)); }
};

// timm-like: conv_stem, blocks.S.I.{conv_pw, bn1}, pos_embed, cls_token, head.
struct Net : nn::Module {
  Variable pos_embed, cls_token;
  std::shared_ptr<Affine> conv_stem, head;
  std::shared_ptr<nn::Sequential> blocks;
  explicit Net(int64_t c = 4) {
    conv_stem = register_module("conv_stem", std::make_shared<Affine>(c));
    blocks = register_module("blocks", std::make_shared<nn::Sequential>());
    for (int s = 0; s < 2; ++s) {
      auto stage = blocks->push_back(std::make_shared<nn::Sequential>());
      for (int i = 0; i < s + 1; ++i) stage->push_back(std::make_shared<Block>(c));
    }
    pos_embed = register_parameter("pos_embed", random_tensor({1, 3, c}, DType::f32, -1, 1, next_seed()));
    cls_token = register_parameter("cls_token", random_tensor({1, 1, c}, DType::f32, -1, 1, next_seed()));
    head = register_module("head", std::make_shared<Affine>(c));
  }
};

template <class Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> out;
  for (const auto& p : pairs) out.push_back(p.first);
  return out;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "expected an ember::Error";
  } catch (const Error& e) {
    for (const auto& piece : pieces)
      EXPECT_NE(std::string(e.what()).find(piece), std::string::npos) << "'" << piece << "' not in: " << e.what();
  }
}

}  // namespace

TEST(Module, NamesParametersAndBuffersByDottedPathInRegistrationOrder) {
  Net net;
  const std::vector<std::string> params = {
      "conv_stem.weight", "conv_stem.bias",
      "blocks.0.0.conv_pw.weight", "blocks.0.0.bn1.weight", "blocks.0.0.bn1.bias",
      "blocks.1.0.conv_pw.weight", "blocks.1.0.bn1.weight", "blocks.1.0.bn1.bias",
      "blocks.1.1.conv_pw.weight", "blocks.1.1.bn1.weight", "blocks.1.1.bn1.bias",
      "pos_embed", "cls_token", "head.weight", "head.bias"};
  // A module's own parameters come before its children's, in registration order: Net registers
  // pos_embed and cls_token after its first children, yet they are Net's own.
  std::vector<std::string> expected = {"pos_embed", "cls_token"};
  for (const auto& n : params)
    if (n != "pos_embed" && n != "cls_token") expected.push_back(n);
  EXPECT_EQ(names_of(net.named_parameters()), expected);
  EXPECT_EQ(names_of(net.named_buffers()),
            (std::vector<std::string>{"blocks.0.0.bn1.running_mean", "blocks.0.0.bn1.num_batches_tracked",
                                      "blocks.1.0.bn1.running_mean", "blocks.1.0.bn1.num_batches_tracked",
                                      "blocks.1.1.bn1.running_mean", "blocks.1.1.bn1.num_batches_tracked"}));
  EXPECT_EQ(names_of(net.children()), (std::vector<std::string>{"conv_stem", "blocks", "head"}));
  auto modules = net.named_modules();
  EXPECT_EQ(modules.front().first, "");
  EXPECT_EQ(modules.front().second, &net);
  EXPECT_NE(std::find_if(modules.begin(), modules.end(), [](auto& m) { return m.first == "blocks.1.1.bn1"; }),
            modules.end());

  // Lookups hand back the very Variable / buffer the layer holds.
  auto stage1 = std::dynamic_pointer_cast<nn::Sequential>((*net.blocks)[1]);
  auto block = std::dynamic_pointer_cast<Block>((*stage1)[0]);
  ASSERT_TRUE(block);
  EXPECT_TRUE(net.parameter("blocks.1.0.conv_pw.weight").same(block->conv_pw->weight));
  EXPECT_EQ(&net.buffer("blocks.1.0.bn1.running_mean"), &block->bn1->running_mean);
  EXPECT_TRUE(net.parameter("pos_embed").requires_grad());
  expect_error([&] { net.parameter("blocks.9.x"); }, {"no parameter named 'blocks.9.x'"});

  // parameters() and num_parameters() agree with the named list.
  EXPECT_EQ(net.parameters().size(), expected.size());
  const int64_t c = 4;
  const int64_t total = (c * c + c) * 2 /*stem, head*/ + 3 * (c * c + 2 * c) /*blocks*/ + 3 * c + c;
  EXPECT_EQ(net.num_parameters(), total);
  net.freeze("head");
  EXPECT_EQ(net.num_parameters(/*trainable_only=*/true), total - (c * c + c));
}

TEST(Module, RegistrationRejectsBadNames) {
  nn::Module m;
  m.register_parameter("w", random_tensor({2}, DType::f32));
  expect_error([&] { m.register_parameter("w", random_tensor({2}, DType::f32)); }, {"register_parameter", "'w'",
                                                                                   "already registered"});
  expect_error([&] { m.register_buffer("w", zeros({2})); }, {"register_buffer", "already registered"});
  expect_error([&] { m.register_module("a.b", std::make_shared<nn::Module>()); }, {"'a.b'", "contains '.'"});
  expect_error([&] { m.register_parameter("", random_tensor({2})); }, {"empty name"});
  expect_error([&] { m.register_parameter("idx", zeros({2}, DType::i64)); }, {"i64", "floating"});
  expect_error([&] { m.register_module("none", std::shared_ptr<nn::Module>()); }, {"null module"});
}

TEST(Module, SequentialAppliesItsLayersInOrder) {
  auto seq = std::make_shared<nn::Sequential>();
  auto a = seq->push_back(std::make_shared<Affine>(3, /*with_bias=*/false));  // x·2
  auto n = seq->push_back(std::make_shared<Norm>(3));                          // +1
  EXPECT_EQ(seq->size(), 2u);
  Variable x(random_tensor({3}, DType::f32, -1, 1, 7));
  Variable y = (*seq)(x);
  std::vector<double> expected;
  for (double v : values(x.data())) expected.push_back(v * 2.0 + 1.0);
  EXPECT_TRUE(all_close(y.data(), expected));
  EXPECT_EQ(names_of(seq->named_parameters()), (std::vector<std::string>{"0.weight", "1.weight", "1.bias"}));
  expect_error([&] { (*seq)[2]; }, {"index 2 out of range"});
}

TEST(Module, TrainAndEvalRecurse) {
  Net net;
  EXPECT_TRUE(net.is_training());
  net.eval();
  for (auto& [name, m] : net.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  net.train();
  for (auto& [name, m] : net.named_modules()) EXPECT_TRUE(m->is_training()) << name;
}

TEST(Module, ToDTypeConvertsInPlaceAndKeepsIntegerBuffers) {
  Net net;
  Variable w = net.conv_stem->weight;
  Tensor& rm = net.buffer("blocks.0.0.bn1.running_mean");
  auto before_w = values(w.data());
  auto before_rm = values(rm);
  w.set_grad(ones_like(w.data()));
  net.to(DType::f64);
  EXPECT_EQ(net.conv_stem->weight.dtype(), DType::f64);  // the layer's own handle sees the change
  EXPECT_EQ(w.dtype(), DType::f64);
  EXPECT_EQ(w.grad().dtype(), DType::f64);
  EXPECT_EQ(values(w.data()), before_w);
  EXPECT_EQ(rm.dtype(), DType::f64);  // the reference register_buffer returned follows
  EXPECT_EQ(values(rm), before_rm);
  EXPECT_EQ(net.buffer("blocks.0.0.bn1.num_batches_tracked").dtype(), DType::i64);
  net.to(Device::cpu());  // already there: a no-op
  EXPECT_EQ(values(w.data()), before_w);
  expect_error([&] { net.to(DType::i32); }, {"Module::to", "i32", "not a floating dtype"});
}

TEST(Module, StateDictRoundTripsIntoAnotherInstanceInPlace) {
  Net a, b;
  nn::StateDict sd = a.state_dict();
  // Per module: parameters, then buffers, then children (PyTorch's order).
  ASSERT_EQ(sd.size(), a.named_parameters().size() + a.named_buffers().size());
  auto names = names_of(sd);
  auto pos = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) - names.begin(); };
  EXPECT_LT(pos("blocks.0.0.bn1.bias"), pos("blocks.0.0.bn1.running_mean"));
  EXPECT_LT(pos("blocks.0.0.bn1.num_batches_tracked"), pos("blocks.1.0.conv_pw.weight"));
  EXPECT_EQ(names.front(), "pos_embed");

  void* storage_before = b.conv_stem->weight.data().data_ptr();
  Tensor& b_rm = b.buffer("blocks.1.1.bn1.running_mean");
  nn::LoadReport report = b.load_state_dict(sd);
  EXPECT_TRUE(report.ok()) << report.str();
  for (auto& [name, t] : b.state_dict()) {
    auto it = std::find_if(sd.begin(), sd.end(), [&, &name = name](auto& e) { return e.first == name; });
    ASSERT_NE(it, sd.end()) << name;
    EXPECT_EQ(values(t), values(it->second)) << name;
  }
  EXPECT_EQ(b.conv_stem->weight.data().data_ptr(), storage_before);  // copied into, not replaced
  EXPECT_EQ(values(b_rm), values(a.buffer("blocks.1.1.bn1.running_mean")));
}

TEST(Module, LoadReportListsMissingUnexpectedAndMismatched) {
  Net a, b;
  nn::StateDict sd;
  for (auto& [name, t] : a.state_dict()) {
    if (name == "head.bias") continue;                                           // missing
    if (name == "pos_embed") t = random_tensor({1, 5, 4}, DType::f32, -1, 1, 3);  // mismatched
    sd.emplace_back(name, t);
  }
  sd.emplace_back("fc.weight", random_tensor({2, 2}, DType::f32));  // unexpected
  auto b_pos = values(b.pos_embed.data());
  auto b_bias = values(b.head->bias.data());
  auto b_stem_before = values(b.conv_stem->weight.data());

  // Strict: throws naming all three, loads nothing.
  expect_error([&] { b.load_state_dict(sd, /*strict=*/true); },
               {"load_state_dict", "missing (1): head.bias", "unexpected (1): fc.weight",
                "pos_embed (module [1, 3, 4], got [1, 5, 4])", "nothing was loaded"});
  EXPECT_EQ(values(b.conv_stem->weight.data()), b_stem_before);

  // Non-strict: loads the rest, reports the three.
  nn::LoadReport r = b.load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"head.bias"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"fc.weight"}));
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].name, "pos_embed");
  EXPECT_EQ(r.mismatched[0].expected, (Shape{1, 3, 4}));
  EXPECT_EQ(r.mismatched[0].got, (Shape{1, 5, 4}));
  EXPECT_EQ(values(b.pos_embed.data()), b_pos);
  EXPECT_EQ(values(b.head->bias.data()), b_bias);
  EXPECT_EQ(values(b.conv_stem->weight.data()), values(a.conv_stem->weight.data()));

  nn::StateDict twice = {{"x", zeros({1})}, {"x", zeros({1})}};
  expect_error([&] { b.load_state_dict(twice, false); }, {"names 'x' twice"});
}

TEST(Module, FreezeAndUnfreezeByDottedPrefix) {
  nn::Module m;
  auto head = m.register_module("head", std::make_shared<Affine>(2));
  auto head2 = m.register_module("head2", std::make_shared<Affine>(2));
  auto blocks = m.register_module("blocks", std::make_shared<nn::Sequential>());
  auto b0 = blocks->push_back(std::make_shared<Affine>(2));
  auto b1 = blocks->push_back(std::make_shared<Affine>(2));
  head->weight.set_grad(ones_like(head->weight.data()));

  EXPECT_EQ(m.freeze("head"), 2);  // head.weight, head.bias — not head2.*
  EXPECT_FALSE(head->weight.requires_grad());
  EXPECT_FALSE(head->bias.requires_grad());
  EXPECT_FALSE(head->weight.grad().defined());  // a frozen parameter drops its gradient
  EXPECT_TRUE(head2->weight.requires_grad());
  EXPECT_EQ(m.freeze("blocks.1"), 2);
  EXPECT_TRUE(b0->weight.requires_grad());
  EXPECT_FALSE(b1->weight.requires_grad());
  EXPECT_EQ(m.freeze("blocks.0.weight"), 1);  // a full name is its own prefix
  EXPECT_FALSE(b0->weight.requires_grad());
  EXPECT_TRUE(b0->bias.requires_grad());

  EXPECT_EQ(m.unfreeze(""), 5);  // everything frozen so far
  for (auto& [name, p] : m.named_parameters()) EXPECT_TRUE(p.requires_grad()) << name;
  EXPECT_EQ(m.freeze(), 8);
  for (auto& [name, p] : m.named_parameters()) EXPECT_FALSE(p.requires_grad()) << name;
  expect_error([&] { m.freeze("heads"); }, {"freeze: no parameter at or under 'heads'"});
  expect_error([&] { m.unfreeze("blocks.2"); }, {"unfreeze", "'blocks.2'"});
}

TEST(Module, ParamGroupsSplitDecayFromNoDecay) {
  Net net;
  net.freeze("conv_stem");  // frozen parameters stay in the groups
  auto groups = net.param_groups(0.05);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "decay");
  EXPECT_EQ(groups[0].weight_decay, 0.05);
  EXPECT_EQ(groups[1].name, "no_decay");
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(groups[0].param_names,
            (std::vector<std::string>{"conv_stem.weight", "blocks.0.0.conv_pw.weight", "blocks.1.0.conv_pw.weight",
                                      "blocks.1.1.conv_pw.weight", "head.weight"}));
  EXPECT_EQ(groups[1].param_names,
            (std::vector<std::string>{"pos_embed", "cls_token", "conv_stem.bias", "blocks.0.0.bn1.weight",
                                      "blocks.0.0.bn1.bias", "blocks.1.0.bn1.weight", "blocks.1.0.bn1.bias",
                                      "blocks.1.1.bn1.weight", "blocks.1.1.bn1.bias", "head.bias"}));
  ASSERT_EQ(groups[0].params.size(), groups[0].param_names.size());
  EXPECT_TRUE(groups[0].params[4].same(net.head->weight));
  // A custom exclusion list.
  auto custom = net.param_groups(0.1, {"weight"});
  EXPECT_EQ(custom[0].param_names, (std::vector<std::string>{"pos_embed", "cls_token"}));
}

TEST(Module, TiedParametersAreListedOnceButSavedUnderEveryName) {
  nn::Module m;
  auto enc = m.register_module("encoder", std::make_shared<Affine>(2, /*with_bias=*/false));
  auto dec = m.register_module("decoder", std::make_shared<nn::Module>());
  dec->register_parameter("weight", enc->weight);  // the same Variable
  EXPECT_EQ(names_of(m.named_parameters()), (std::vector<std::string>{"encoder.weight"}));
  EXPECT_EQ(m.num_parameters(), 4);
  EXPECT_EQ(names_of(m.state_dict()), (std::vector<std::string>{"encoder.weight", "decoder.weight"}));
  m.to(DType::f64);
  EXPECT_EQ(dec->parameter("weight").dtype(), DType::f64);
  EXPECT_TRUE(dec->parameter("weight").same(enc->weight));
}

TEST(Module, PrefixesCombineSeveralStateDictsInOneCheckpoint) {
  nn::StateDict model = {{"head.weight", zeros({2})}, {"head.bias", ones({1})}};
  nn::StateDict opt = {{"state.0.step", scalar_tensor(3, DType::i64)}};
  nn::StateDict file = nn::add_prefix(model, "model");
  for (auto& e : nn::add_prefix(opt, "optimizer")) file.push_back(e);
  EXPECT_EQ(names_of(file), (std::vector<std::string>{"model.head.weight", "model.head.bias", "optimizer.state.0.step"}));
  EXPECT_EQ(names_of(nn::select_prefix(file, "model")), (std::vector<std::string>{"head.weight", "head.bias"}));
  EXPECT_EQ(names_of(nn::select_prefix(file, "optimizer")), (std::vector<std::string>{"state.0.step"}));
  EXPECT_TRUE(nn::select_prefix(file, "mod").empty());  // whole components only
  EXPECT_EQ(nn::select_prefix(file, "").size(), 3u);
}
