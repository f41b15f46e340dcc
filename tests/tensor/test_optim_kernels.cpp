// The fused optimizer kernels (tensor/ops/adamw.h, tensor/ops/sgd.h): their error messages.
// Their values (three steps against float64 loops, every variant, CPU and CUDA) are the op
// harness's (test_backend_ops: adamw_*, adam_l2_*, sgd_*).

#include "tensor/ops/adamw.h"
#include "tensor/ops/sgd.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::random_tensor;

namespace {

struct AdamState {
  Tensor w, g, m, v;
};

AdamState adam_inputs(const Shape& shape, DType dtype, uint64_t seed, Device device = Device::cpu()) {
  return {random_tensor(shape, dtype, -1, 1, seed, device), random_tensor(shape, dtype, -2, 2, seed + 1, device),
          random_tensor(shape, dtype, -0.5, 0.5, seed + 2, device),
          random_tensor(shape, dtype, 0.01, 1, seed + 3, device)};  // v >= 0
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

TEST(AdamWKernel, RejectsMismatchedOperands) {
  AdamState st = adam_inputs({4, 3}, DType::f32, 1);
  AdamWStep s;
  expect_error([&] { adamw_update(st.w, zeros({3, 4}), st.m, st.v, s); },
               {"adamw_update", "grad has shape [3, 4]", "parameter's [4, 3]"});
  expect_error([&] { adamw_update(st.w, st.g, zeros({4, 3}, DType::f64), st.v, s); },
               {"exp_avg has dtype f64", "expected f32 for a f32 parameter"});
  expect_error([&] { adamw_update(st.w, st.g, st.m, st.v.t().contiguous().t(), s); },
               {"exp_avg_sq", "must be contiguous"});
  expect_error([&] { adamw_update(st.w.to(DType::bf16), st.g, st.m, st.v, s); }, {"bf16", "CUDA only"});
  expect_error([&] { adamw_update(st.w.to(DType::i32), st.g, st.m, st.v, s); }, {"i32", "expected f32, f64, bf16 or f16"});
  expect_error([&] { adamw_update(st.w, st.g, st.m, Tensor(), s); }, {"exp_avg_sq is undefined"});
  AdamWStep bad = s;
  bad.step = 0;
  expect_error([&] { adamw_update(st.w, st.g, st.m, st.v, bad); }, {"step 0"});
  bad = s;
  bad.beta2 = 1.0;
  expect_error([&] { adamw_update(st.w, st.g, st.m, st.v, bad); }, {"betas (0.9, 1)"});
}

TEST(SGDKernel, RejectsMismatchedOperands) {
  Tensor w = random_tensor({3}, DType::f32);
  expect_error([&] { sgd_update(w, zeros({4}), Tensor(), {}); }, {"sgd_update", "grad has shape [4]"});
  expect_error([&] { sgd_update(w, zeros({3}), Tensor(), {.momentum = 0.9}); }, {"momentum_buffer is undefined"});
  expect_error([&] { sgd_update(w, zeros({3}), zeros({3}), {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
               {"Nesterov"});
}
