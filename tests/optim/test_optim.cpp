// Optimizers on a quadratic, against the update equations written out here in double:
// SGD (± momentum, dampening, Nesterov, weight decay), Adam, AdamW, SAM / ASAM, gradient
// clipping, EMA, parameter groups, and state-dict round trips that continue identically.
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "nn/safetensors.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/sam.h"
#include "optim/sgd.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::values;
using Vec = std::vector<double>;

namespace {

// L(w) = ½ Σ a_i (w_i − c_i)²,   ∂L/∂w_i = a_i (w_i − c_i)
struct Quadratic {
  Vec a, c;
  Vec grad(const Vec& w) const {
    Vec g(w.size());
    for (size_t i = 0; i < w.size(); ++i) g[i] = a[i] * (w[i] - c[i]);
    return g;
  }
  double loss(const Vec& w) const {
    double s = 0;
    for (size_t i = 0; i < w.size(); ++i) s += 0.5 * a[i] * (w[i] - c[i]) * (w[i] - c[i]);
    return s;
  }
};

const Quadratic kQ1{{1.0, 3.0, 0.5}, {0.2, -0.7, 1.5}};
const Quadratic kQ2{{2.0, 0.25}, {-1.0, 0.4}};
const Vec kW1{0.9, 0.3, -0.8};
const Vec kW2{0.5, -1.2};

Variable param(const Vec& w, DType dtype = DType::f64) {
  return Variable(from_vector<double>(w, {static_cast<int64_t>(w.size())}, dtype), true);
}

void set_grad(Variable& p, const Quadratic& q) {
  p.set_grad(from_vector<double>(q.grad(values(p.data())), p.shape(), p.dtype()));
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

// PyTorch's SGD, written out.
Vec sgd_reference(Vec w, const Quadratic& q, int steps, double lr, double mu, double damp, double wd, bool nesterov) {
  Vec b(w.size(), 0.0);
  for (int t = 0; t < steps; ++t) {
    Vec g = q.grad(w);
    for (size_t i = 0; i < w.size(); ++i) {
      double d = g[i] + wd * w[i];
      if (mu != 0) {
        b[i] = t == 0 ? d : mu * b[i] + (1 - damp) * d;
        d = nesterov ? d + mu * b[i] : b[i];
      }
      w[i] -= lr * d;
    }
  }
  return w;
}

// Adam / AdamW in the textbook form with bias-corrected moments.
Vec adam_reference(Vec w, const Quadratic& q, int steps, double lr, double b1, double b2, double eps, double wd,
                   bool decoupled) {
  Vec m(w.size(), 0.0), v(w.size(), 0.0);
  for (int t = 1; t <= steps; ++t) {
    Vec g = q.grad(w);
    for (size_t i = 0; i < w.size(); ++i) {
      if (decoupled) {
        w[i] -= lr * wd * w[i];
      } else {
        g[i] += wd * w[i];
      }
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      double m_hat = m[i] / (1 - std::pow(b1, t));
      double v_hat = v[i] / (1 - std::pow(b2, t));
      w[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
  return w;
}

template <class Opt>
void run(Opt& opt, std::vector<Variable*> params, std::vector<const Quadratic*> qs, int steps) {
  for (int t = 0; t < steps; ++t) {
    opt.zero_grad();
    for (size_t k = 0; k < params.size(); ++k) set_grad(*params[k], *qs[k]);
    opt.step();
  }
}

}  // namespace

TEST(SGD, MatchesTheUpdateEquations) {
  struct Case {
    double mu, damp, wd;
    bool nesterov;
  };
  for (Case c : {Case{0, 0, 0, false}, Case{0.9, 0, 0, false}, Case{0.9, 0, 0, true}, Case{0, 0, 0.1, false},
                 Case{0.8, 0.3, 0.05, false}, Case{0.9, 0, 0.05, true}}) {
    Variable w = param(kW1);
    optim::SGD opt(std::vector<Variable>{w}, {.lr = 0.1, .momentum = c.mu, .dampening = c.damp,
                                              .weight_decay = c.wd, .nesterov = c.nesterov});
    run(opt, {&w}, {&kQ1}, 5);
    EXPECT_TRUE(all_close(w.data(), sgd_reference(kW1, kQ1, 5, 0.1, c.mu, c.damp, c.wd, c.nesterov), 1e-13, 1e-15))
        << "momentum " << c.mu << " dampening " << c.damp << " wd " << c.wd << " nesterov " << c.nesterov;
    EXPECT_EQ(opt.step_count(0), 5);
  }
  // One step by hand: w − lr·a(w − c) for w0 = 0.9, a = 1, c = 0.2: 0.9 − 0.1·0.7 = 0.83.
  Variable w = param(kW1);
  optim::SGD opt(std::vector<Variable>{w}, {.lr = 0.1});
  run(opt, {&w}, {&kQ1}, 1);
  EXPECT_NEAR(values(w.data())[0], 0.83, 1e-15);
  expect_error([&] { optim::SGD({w}, {.lr = 0.1, .nesterov = true}); }, {"Nesterov", "momentum > 0"});
}

TEST(Adam, MatchesTheUpdateEquations) {
  for (bool decoupled : {false, true}) {
    for (double wd : {0.0, 0.1}) {
      Variable w = param(kW1);
      optim::AdamOptions o{.lr = 0.05, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = wd};
      std::unique_ptr<optim::Optimizer> opt;
      if (decoupled) {
        opt = std::make_unique<optim::AdamW>(std::vector<Variable>{w}, o);
      } else {
        opt = std::make_unique<optim::Adam>(std::vector<Variable>{w}, o);
      }
      run(*opt, {&w}, {&kQ1}, 6);
      EXPECT_TRUE(all_close(w.data(), adam_reference(kW1, kQ1, 6, 0.05, 0.9, 0.99, 1e-8, wd, decoupled), 1e-12, 1e-15))
          << (decoupled ? "AdamW" : "Adam") << " wd " << wd;
    }
  }
  // The first Adam step moves each weight by lr·g/(|g| + ε): almost exactly lr against the gradient.
  Variable w = param(kW1);
  optim::Adam opt(std::vector<Variable>{w}, {.lr = 0.01});
  run(opt, {&w}, {&kQ1}, 1);
  Vec g = kQ1.grad(kW1), expected;
  for (size_t i = 0; i < 3; ++i) expected.push_back(kW1[i] - 0.01 * g[i] / (std::fabs(g[i]) + 1e-8));
  EXPECT_TRUE(all_close(w.data(), expected, 1e-14, 1e-15));

  // float32 parameters follow the same path within float rounding.
  Variable w32 = param(kW1, DType::f32);
  optim::AdamW opt32(std::vector<Variable>{w32}, {.lr = 0.05, .weight_decay = 0.1});
  run(opt32, {&w32}, {&kQ1}, 6);
  EXPECT_TRUE(all_close(w32.data(), adam_reference(kW1, kQ1, 6, 0.05, 0.9, 0.999, 1e-8, 0.1, true), 1e-5, 1e-6));
}

TEST(Optimizer, GroupsCarryTheirOwnLrAndWeightDecayAndSkipParamsWithoutGrad) {
  Variable w1 = param(kW1), w2 = param(kW2), frozen = param(kW2), unused = param(kW1);
  frozen.set_requires_grad(false);
  std::vector<optim::ParamGroup> groups = {{"decay", {w1, frozen}, {}, 0.1, -1.0, 1.0},
                                           {"no_decay", {w2, unused}, {}, 0.0, -1.0, 0.5}};
  optim::AdamW opt(groups, {.lr = 0.02});
  EXPECT_EQ(opt.param_groups()[0].lr, 0.02);
  EXPECT_EQ(opt.param_groups()[1].lr, 0.01);  // lr_scale 0.5
  EXPECT_EQ(opt.num_params(), 4);
  for (int t = 0; t < 3; ++t) {
    opt.zero_grad();
    set_grad(w1, kQ1);
    set_grad(w2, kQ2);
    frozen.set_grad(ones_like(frozen.data()));  // a stale gradient on a frozen parameter
    opt.step();
  }
  EXPECT_TRUE(all_close(w1.data(), adam_reference(kW1, kQ1, 3, 0.02, 0.9, 0.999, 1e-8, 0.1, true), 1e-12, 1e-15));
  EXPECT_TRUE(all_close(w2.data(), adam_reference(kW2, kQ2, 3, 0.01, 0.9, 0.999, 1e-8, 0.0, true), 1e-12, 1e-15));
  EXPECT_EQ(values(frozen.data()), kW2);  // frozen: not updated although it holds a gradient
  EXPECT_EQ(values(unused.data()), kW1);  // no gradient: not updated
  EXPECT_EQ(opt.step_count(1), 0);
  EXPECT_EQ(opt.step_count(2), 3);
  opt.set_lr(0.4);
  EXPECT_EQ(opt.lr(), 0.4);
  EXPECT_EQ(opt.param_groups()[1].lr, 0.2);
  opt.zero_grad();
  EXPECT_FALSE(w1.grad().defined());

  opt.param_groups()[0].params.push_back(param(kW1));
  expect_error([&] { opt.step(); }, {"cannot be added or removed after construction"});
  expect_error([&] { optim::SGD({w1, w1}, {}); }, {"appears more than once"});
  Variable nonleaf = w1 * 2.0;
  expect_error([&] { optim::SGD({nonleaf}, {}); }, {"not a leaf"});
}

TEST(Optimizer, StateDictRoundTripContinuesIdentically) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("ember_optim_state_" + std::to_string(::getpid()) + ".safetensors")).string();
  for (int kind = 0; kind < 2; ++kind) {
    Variable a1 = param(kW1), a2 = param(kW2, DType::f64);
    auto make = [&](Variable x, Variable y) -> std::unique_ptr<optim::Optimizer> {
      std::vector<optim::ParamGroup> groups = {{"g0", {x}, {}, 0.01, -1.0, 1.0}, {"g1", {y}, {}, 0.0, -1.0, 1.0}};
      if (kind == 0) return std::make_unique<optim::AdamW>(groups, optim::AdamOptions{.lr = 0.03});
      return std::make_unique<optim::SGD>(groups, optim::SGDOptions{.lr = 0.03, .momentum = 0.9, .nesterov = true});
    };
    auto opt = make(a1, a2);
    run(*opt, {&a1, &a2}, {&kQ1, &kQ2}, 3);
    opt->set_lr(0.02);

    nn::StateDict sd = opt->state_dict();
    std::vector<std::string> names;
    for (auto& [n, t] : sd) names.push_back(n);
    if (kind == 0) {
      EXPECT_EQ(names, (std::vector<std::string>{"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
                                                 "state.1.step", "state.1.exp_avg", "state.1.exp_avg_sq",
                                                 "param_groups.0.lr", "param_groups.0.weight_decay",
                                                 "param_groups.1.lr", "param_groups.1.weight_decay"}));
    } else {
      EXPECT_EQ(names, (std::vector<std::string>{"state.0.step", "state.0.momentum_buffer", "state.1.step",
                                                 "state.1.momentum_buffer", "param_groups.0.lr",
                                                 "param_groups.0.weight_decay", "param_groups.1.lr",
                                                 "param_groups.1.weight_decay"}));
    }
    nn::save_safetensors(path, sd);  // through a checkpoint file and back

    Variable b1(a1.data().clone(), true), b2(a2.data().clone(), true);
    auto restored = make(b1, b2);
    restored->load_state_dict(nn::load_safetensors(path).tensors);
    EXPECT_EQ(restored->step_count(0), 3);
    EXPECT_EQ(restored->lr(), 0.02);
    run(*opt, {&a1, &a2}, {&kQ1, &kQ2}, 3);
    run(*restored, {&b1, &b2}, {&kQ1, &kQ2}, 3);
    EXPECT_EQ(values(b1.data()), values(a1.data()));  // bit-identical continuation
    EXPECT_EQ(values(b2.data()), values(a2.data()));

    // Bad dicts are refused and leave the optimizer unchanged.
    auto before = values(restored->state_dict()[1].second);
    nn::StateDict bad = {{std::string("state.0.") + (kind == 0 ? "exp_avg" : "momentum_buffer"), zeros({5}, DType::f64)}};
    expect_error([&] { restored->load_state_dict(bad); }, {"has shape [5]", "parameter 0 has shape [3]"});
    expect_error([&] { restored->load_state_dict({{"state.7.step", scalar_tensor(1)}}); }, {"names parameter 7"});
    expect_error([&] { restored->load_state_dict({{"state.0.velocity", zeros({3})}}); }, {"not state this optimizer"});
    expect_error([&] { restored->load_state_dict({{"momentum", zeros({3})}}); }, {"unexpected name 'momentum'"});
    EXPECT_EQ(values(restored->state_dict()[1].second), before);
  }
  std::filesystem::remove(path);
}

TEST(SAM, PerturbsAlongTheGlobalGradientThenRestoresAndStepsTheBase) {
  const double rho = 0.05, lr = 0.1;
  for (bool adaptive : {false, true}) {
    Variable w1 = param(kW1), w2 = param(kW2);
    optim::SGD base(std::vector<Variable>{w1, w2}, {.lr = lr});
    optim::SAM sam(base, rho, adaptive);
    set_grad(w1, kQ1);
    set_grad(w2, kQ2);

    // e = ρ·g/‖g‖ (SAM) or ρ·w²g/‖|w|g‖ (ASAM), the norm over both parameters together.
    Vec g1 = kQ1.grad(kW1), g2 = kQ2.grad(kW2);
    double sum_sq = 0;
    for (size_t i = 0; i < 3; ++i) sum_sq += std::pow((adaptive ? std::fabs(kW1[i]) : 1.0) * g1[i], 2);
    for (size_t i = 0; i < 2; ++i) sum_sq += std::pow((adaptive ? std::fabs(kW2[i]) : 1.0) * g2[i], 2);
    const double scale = rho / (std::sqrt(sum_sq) + 1e-12);
    Vec p1 = kW1, p2 = kW2;
    for (size_t i = 0; i < 3; ++i) p1[i] += scale * (adaptive ? kW1[i] * kW1[i] : 1.0) * g1[i];
    for (size_t i = 0; i < 2; ++i) p2[i] += scale * (adaptive ? kW2[i] * kW2[i] : 1.0) * g2[i];

    sam.first_step();
    EXPECT_NEAR(sam.last_grad_norm(), std::sqrt(sum_sq), 1e-14);
    EXPECT_TRUE(all_close(w1.data(), p1, 1e-14, 1e-16));
    EXPECT_TRUE(all_close(w2.data(), p2, 1e-14, 1e-16));
    if (!adaptive) {  // plain SAM moves the weights by exactly ρ in L2
      double moved = 0;
      for (size_t i = 0; i < 3; ++i) moved += std::pow(p1[i] - kW1[i], 2);
      for (size_t i = 0; i < 2; ++i) moved += std::pow(p2[i] - kW2[i], 2);
      EXPECT_NEAR(std::sqrt(moved), rho, 1e-12);
    }
    // The gradient at the perturbed point drives the base step from the restored weights.
    sam.zero_grad();
    set_grad(w1, kQ1);
    set_grad(w2, kQ2);
    sam.second_step();
    Vec h1 = kQ1.grad(p1), h2 = kQ2.grad(p2), e1 = kW1, e2 = kW2;
    for (size_t i = 0; i < 3; ++i) e1[i] -= lr * h1[i];
    for (size_t i = 0; i < 2; ++i) e2[i] -= lr * h2[i];
    EXPECT_TRUE(all_close(w1.data(), e1, 1e-14, 1e-16)) << (adaptive ? "ASAM" : "SAM");
    EXPECT_TRUE(all_close(w2.data(), e2, 1e-14, 1e-16)) << (adaptive ? "ASAM" : "SAM");
  }
}

TEST(SAM, RestoreIsBitExactAndStepWithClosureMatchesTheTwoCalls) {
  // A base step of lr 0 shows the restore alone: the weights come back bit for bit.
  Variable w = param(kW1, DType::f32);
  const Vec w0 = values(w.data());
  optim::SGD still(std::vector<Variable>{w}, {.lr = 0.0});
  optim::SAM sam0(still, 0.3);
  set_grad(w, kQ1);
  sam0.first_step();
  EXPECT_NE(values(w.data()), w0);
  set_grad(w, kQ1);
  sam0.second_step();
  EXPECT_EQ(values(w.data()), w0);

  // step(closure): the closure sees the perturbed weights and fresh (zeroed) gradients.
  Variable a = param(kW1), b = param(kW1);
  optim::SGD base_a(std::vector<Variable>{a}, {.lr = 0.1}), base_b(std::vector<Variable>{b}, {.lr = 0.1});
  optim::SAM sam_a(base_a, 0.05, true), sam_b(base_b, 0.05, true);
  set_grad(a, kQ1);
  sam_a.first_step();
  sam_a.zero_grad();
  set_grad(a, kQ1);
  sam_a.second_step();

  set_grad(b, kQ1);
  Vec seen;
  double loss = sam_b.step([&] {
    EXPECT_FALSE(b.grad().defined());
    seen = values(b.data());
    set_grad(b, kQ1);
    return kQ1.loss(seen);
  });
  EXPECT_NE(seen, kW1);
  EXPECT_EQ(loss, kQ1.loss(seen));
  EXPECT_EQ(values(b.data()), values(a.data()));

  expect_error([&] { sam_b.second_step(); }, {"no first_step"});
  sam_b.zero_grad();
  expect_error([&] { sam_b.first_step(); }, {"no parameter has a gradient"});
}

TEST(ClipGradNorm, ScalesAllGradientsByOneGlobalNorm) {
  Variable p1 = param({0, 0}), p2 = param({0}), p3 = param({0});
  p1.set_grad(from_vector<double>({3, 4}, {2}));
  p2.set_grad(from_vector<double>({12}, {1}));  // ‖(3, 4, 12)‖ = 13
  double total = optim::clip_grad_norm({p1, p2, p3}, 6.5);
  EXPECT_DOUBLE_EQ(total, 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_TRUE(all_close(p1.grad(), {3 * coef, 4 * coef}, 1e-15));
  EXPECT_TRUE(all_close(p2.grad(), {12 * coef}, 1e-15));
  EXPECT_NEAR(optim::grad_norm({p1, p2}), 6.5, 1e-6);
  // Under the limit: untouched.
  EXPECT_NEAR(optim::clip_grad_norm({p1, p2}, 100.0), 13.0 * coef, 1e-12);
  EXPECT_TRUE(all_close(p1.grad(), {3 * coef, 4 * coef}, 1e-15));
  // float32 gradients are summed in double.
  Variable q = param({0, 0}, DType::f32);
  q.set_grad(from_vector<double>({3, 4}, {2}, DType::f32));
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm({q}, 1.0), 5.0);
  EXPECT_TRUE(all_close(q.grad(), {0.6, 0.8}, 1e-6));
  // Non-finite: reported, gradients left alone.
  p2.set_grad(from_vector<double>({INFINITY}, {1}));
  EXPECT_TRUE(std::isinf(optim::clip_grad_norm({p1, p2}, 1.0)));
  EXPECT_TRUE(all_close(p1.grad(), {3 * coef, 4 * coef}, 1e-15));
  expect_error([&] { optim::clip_grad_norm({p1}, 0.0); }, {"max_norm 0"});
}

TEST(EMA, AveragesWeightsAndSwapsThemInAndOut) {
  nn::Module m;
  Variable w = m.register_parameter("w", from_vector<double>(kW1, {3}));
  Tensor& rm = m.register_buffer("running_mean", from_vector<double>({1.0, -1.0}, {2}));
  Tensor& count = m.register_buffer("count", scalar_tensor(0, DType::i64));
  optim::EMA ema(m, 0.9);

  const Vec w1 = {1.0, 2.0, 3.0}, w2 = {-1.0, 0.5, 0.0};
  w.data().copy_(from_vector<double>(w1, {3}));
  rm.copy_(from_vector<double>({3.0, 1.0}, {2}));
  count.fill_(4);
  ema.update();
  w.data().copy_(from_vector<double>(w2, {3}));
  count.fill_(5);
  ema.update();
  EXPECT_EQ(ema.num_updates(), 2);
  Vec expected;
  for (size_t i = 0; i < 3; ++i) expected.push_back(0.9 * (0.9 * kW1[i] + 0.1 * w1[i]) + 0.1 * w2[i]);
  const auto& shadow = ema.shadow();
  ASSERT_EQ(shadow.size(), 3u);
  EXPECT_TRUE(all_close(shadow[0].second, expected, 1e-15));
  EXPECT_TRUE(all_close(shadow[1].second, {0.9 * (0.9 * 1 + 0.1 * 3) + 0.1 * 3, 0.9 * (0.9 * -1 + 0.1 * 1) + 0.1 * 1},
                        1e-15));
  EXPECT_EQ(shadow[2].second.item(), 5.0);  // integer buffers are copied, not averaged

  ema.store();
  ema.copy_to(m);
  EXPECT_TRUE(all_close(w.data(), expected, 1e-15));
  ema.restore();
  EXPECT_EQ(values(w.data()), w2);
  expect_error([&] { ema.restore(); }, {"nothing stored"});
  expect_error([&] { optim::EMA(m, 1.5); }, {"decay 1.5"});
}
