// The fused optimizer kernels (tensor/ops/adamw.h, tensor/ops/sgd.h) on random tensors of
// several shapes, element by element against a float64 reference written here; their error
// messages; and CUDA against CPU.
#include <cmath>

#include "tensor/ops/adamw.h"
#include "tensor/ops/sgd.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

struct AdamState {
  Tensor w, g, m, v;
};

AdamState adam_inputs(const Shape& shape, DType dtype, uint64_t seed, Device device = Device::cpu()) {
  return {random_tensor(shape, dtype, -1, 1, seed, device), random_tensor(shape, dtype, -2, 2, seed + 1, device),
          random_tensor(shape, dtype, -0.5, 0.5, seed + 2, device),
          random_tensor(shape, dtype, 0.01, 1, seed + 3, device)};  // v >= 0
}

// One Adam/AdamW step on every element, in double.
void adam_reference(std::vector<double>& w, std::vector<double> g, std::vector<double>& m, std::vector<double>& v,
                    const AdamWStep& s) {
  const double bc1 = 1 - std::pow(s.beta1, s.step), bc2 = 1 - std::pow(s.beta2, s.step);
  for (size_t i = 0; i < w.size(); ++i) {
    if (s.decoupled) {
      w[i] *= 1 - s.lr * s.weight_decay;
    } else {
      g[i] += s.weight_decay * w[i];
    }
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i];
    v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i];
    w[i] -= s.lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + s.eps);
  }
}

void sgd_reference(std::vector<double>& w, const std::vector<double>& g, std::vector<double>& b, const SGDStep& s) {
  for (size_t i = 0; i < w.size(); ++i) {
    double d = g[i] + s.weight_decay * w[i];
    if (s.momentum != 0) {
      b[i] = s.first_step ? d : s.momentum * b[i] + (1 - s.dampening) * d;
      d = s.nesterov ? d + s.momentum * b[i] : b[i];
    }
    w[i] -= s.lr * d;
  }
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

TEST(AdamWKernel, MatchesTheFloat64ReferenceOnEveryElement) {
  uint64_t seed = 10;
  for (DType dtype : {DType::f64, DType::f32}) {
    for (Shape shape : {Shape{7}, Shape{33, 65}, Shape{3, 4, 5, 6}, Shape{100003}}) {
      for (bool decoupled : {true, false}) {
        AdamState st = adam_inputs(shape, dtype, seed += 4);
        AdamWStep s{.lr = 0.01, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05, .step = 7,
                    .decoupled = decoupled};
        auto w = values(st.w), g = values(st.g), m = values(st.m), v = values(st.v);
        adam_reference(w, g, m, v, s);
        adamw_update(st.w, st.g, st.m, st.v, s);
        const double rtol = dtype == DType::f64 ? 1e-13 : 2e-6;
        EXPECT_TRUE(all_close(st.w, w, rtol, rtol)) << shape_str(shape) << " " << dtype_name(dtype);
        EXPECT_TRUE(all_close(st.m, m, rtol, rtol)) << shape_str(shape);
        EXPECT_TRUE(all_close(st.v, v, rtol, rtol)) << shape_str(shape);
        EXPECT_EQ(values(st.g), g) << "the gradient is read only";
      }
    }
  }
}

TEST(AdamWKernel, RejectsMismatchedOperands) {
  AdamState st = adam_inputs({4, 3}, DType::f32, 1);
  AdamWStep s;
  expect_error([&] { adamw_update(st.w, zeros({3, 4}), st.m, st.v, s); },
               {"adamw_update", "grad has shape [3, 4]", "parameter's [4, 3]"});
  expect_error([&] { adamw_update(st.w, st.g, zeros({4, 3}, DType::f64), st.v, s); },
               {"exp_avg has dtype f64", "parameter's f32"});
  expect_error([&] { adamw_update(st.w, st.g, st.m, st.v.t().contiguous().t(), s); },
               {"exp_avg_sq", "must be contiguous"});
  expect_error([&] { adamw_update(st.w.to(DType::bf16), st.g, st.m, st.v, s); }, {"bf16", "expected f32 or f64"});
  expect_error([&] { adamw_update(st.w, st.g, st.m, Tensor(), s); }, {"exp_avg_sq is undefined"});
  AdamWStep bad = s;
  bad.step = 0;
  expect_error([&] { adamw_update(st.w, st.g, st.m, st.v, bad); }, {"step 0"});
  bad = s;
  bad.beta2 = 1.0;
  expect_error([&] { adamw_update(st.w, st.g, st.m, st.v, bad); }, {"betas (0.9, 1)"});
}

TEST(SGDKernel, MatchesTheFloat64ReferenceOnEveryElement) {
  uint64_t seed = 500;
  struct Case {
    double mu, damp, wd;
    bool nesterov, first;
  };
  for (DType dtype : {DType::f64, DType::f32}) {
    for (Shape shape : {Shape{5}, Shape{17, 31}, Shape{65537}}) {
      for (Case c : {Case{0, 0, 0.01, false, false}, Case{0.9, 0, 0, false, true}, Case{0.9, 0.2, 0.01, false, false},
                     Case{0.9, 0, 0.01, true, false}, Case{0.9, 0, 0.01, true, true}}) {
        Tensor w = random_tensor(shape, dtype, -1, 1, seed++), g = random_tensor(shape, dtype, -1, 1, seed++);
        Tensor b = random_tensor(shape, dtype, -1, 1, seed++);
        if (c.first) ember::testing::poison(b);  // the first step must not read the buffer
        SGDStep s{.lr = 0.05, .momentum = c.mu, .dampening = c.damp, .weight_decay = c.wd, .nesterov = c.nesterov,
                  .first_step = c.first};
        auto wv = values(w), gv = values(g), bv = values(b);
        sgd_reference(wv, gv, bv, s);
        sgd_update(w, g, c.mu != 0 ? b : Tensor(), s);
        const double rtol = dtype == DType::f64 ? 1e-14 : 1e-6;
        EXPECT_TRUE(all_close(w, wv, rtol, rtol)) << shape_str(shape) << " mu " << c.mu << " first " << c.first;
        if (c.mu != 0) {
          EXPECT_TRUE(all_close(b, bv, rtol, rtol)) << shape_str(shape);
        }
      }
    }
  }
  Tensor w = random_tensor({3}, DType::f32);
  expect_error([&] { sgd_update(w, zeros({4}), Tensor(), {}); }, {"sgd_update", "grad has shape [4]"});
  expect_error([&] { sgd_update(w, zeros({3}), Tensor(), {.momentum = 0.9}); }, {"momentum_buffer is undefined"});
  expect_error([&] { sgd_update(w, zeros({3}), zeros({3}), {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
               {"Nesterov"});
}

TEST(OptimKernelsCuda, MatchCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {DType::f32, DType::f64}) {
    for (Shape shape : {Shape{1}, Shape{1000}, Shape{257, 1031}}) {
      AdamState cpu = adam_inputs(shape, dtype, 21), gpu = adam_inputs(shape, dtype, 21, Device::cuda());
      AdamWStep s{.lr = 0.003, .weight_decay = 0.1, .step = 3};
      adamw_update(cpu.w, cpu.g, cpu.m, cpu.v, s);
      adamw_update(gpu.w, gpu.g, gpu.m, gpu.v, s);
      const double tol = dtype == DType::f64 ? 1e-14 : 1e-6;
      EXPECT_TRUE(all_close(gpu.w.cpu(), cpu.w, tol, tol)) << shape_str(shape);
      EXPECT_TRUE(all_close(gpu.m.cpu(), cpu.m, tol, tol));
      EXPECT_TRUE(all_close(gpu.v.cpu(), cpu.v, tol, tol));

      SGDStep sg{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true, .first_step = false};
      sgd_update(cpu.w, cpu.g, cpu.m, sg);
      sgd_update(gpu.w, gpu.g, gpu.m, sg);
      EXPECT_TRUE(all_close(gpu.w.cpu(), cpu.w, tol, tol)) << shape_str(shape);
      EXPECT_TRUE(all_close(gpu.m.cpu(), cpu.m, tol, tol));
    }
  }
}
