// sum_of_squares and clip_by_norm_ (tensor/ops/grad_norm.h), the one reduction behind gradient
// clipping: against float64 loops on the CPU — several chunks per tensor, many tensors, mixed
// dtypes, strided views, empty tensors, non-finite sums — and CUDA against the CPU (skipped
// visibly without a GPU), including more chunks than one launch's table holds.
#include <cmath>
#include <limits>

#include "optim/clip.h"
#include "tensor/ops/grad_norm.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::error_of;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

double reference_sum_of_squares(const std::vector<Tensor>& ts) {
  double s = 0;
  for (const Tensor& t : ts)
    for (double v : values(t)) s += v * v;
  return s;
}

// A mix that crosses chunk edges: one tensor of 2.5 chunks, small ones, an empty one, f32, f64,
// bf16, f16, and a strided view.
std::vector<Tensor> mixed_tensors(Device device = Device::cpu()) {
  std::vector<Tensor> ts;
  ts.push_back(random_tensor({5 * kNormChunk / 2}, DType::f32, -1, 1, 1).to(device));
  ts.push_back(random_tensor({3, 7}, DType::f64, -2, 2, 2).to(device));
  ts.push_back(random_tensor({0, 4}, DType::f32, -1, 1, 3).to(device));
  ts.push_back(random_tensor({kNormChunk + 3}, DType::bf16, -1, 1, 4).to(device));
  ts.push_back(random_tensor({129}, DType::f16, -1, 1, 5).to(device));
  ts.push_back(non_contiguous(random_tensor({33, 17}, DType::f32, -1, 1, 6)).to(device));
  return ts;
}

}  // namespace

TEST(GradNorm, SumOfSquaresMatchesAFloat64Loop) {
  const std::vector<Tensor> ts = mixed_tensors();
  const double ref = reference_sum_of_squares(ts);
  Tensor s = sum_of_squares(ts);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.dtype(), DType::f64);
  EXPECT_NEAR(s.item(), ref, 1e-12 * ref);
  EXPECT_EQ(sum_of_squares({}).item(), 0.0);
  EXPECT_EQ(sum_of_squares({zeros({0})}).item(), 0.0);
}

TEST(GradNorm, SumOfSquaresIsTheSameForAnyThreadCount) {
  const std::vector<Tensor> ts = mixed_tensors();
  const int threads = cpu::num_threads();
  cpu::set_num_threads(1);
  const double one = sum_of_squares(ts).item();
  cpu::set_num_threads(std::max(2, threads));
  const double many = sum_of_squares(ts).item();
  cpu::set_num_threads(threads);
  EXPECT_EQ(one, many);
}

TEST(GradNorm, ClipScalesEveryTensorByOneCoefficient) {
  std::vector<Tensor> ts = mixed_tensors();
  std::vector<Tensor> before;
  for (const Tensor& t : ts) before.push_back(t.clone());
  const double ss = reference_sum_of_squares(ts);
  const double max_norm = 0.25 * std::sqrt(ss);
  clip_by_norm_(ts, sum_of_squares(ts), max_norm);
  const double coef = max_norm / (std::sqrt(ss) + 1e-6);
  for (size_t i = 0; i < ts.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "tensor " << i << " " << ts[i].str());
    const bool half = ts[i].dtype() == DType::bf16 || ts[i].dtype() == DType::f16;
    const double rtol = ts[i].dtype() == DType::bf16 ? 2e-2 : half ? 2e-3 : 1e-6;
    EXPECT_TRUE(all_close(ts[i].to(DType::f64), mul(before[i].to(DType::f64), coef), rtol, half ? 1e-4 : 1e-12));
  }
  // The strided view was written through (its storage is the caller's).
  EXPECT_FALSE(ts[5].is_contiguous());
  EXPECT_NEAR(std::sqrt(sum_of_squares(ts).item()), max_norm, 1e-2 * max_norm);
}

TEST(GradNorm, ClipLeavesSmallAndNonFiniteNormsAlone) {
  std::vector<Tensor> ts = {from_vector<double>({3, 4}, {2})};
  clip_by_norm_(ts, sum_of_squares(ts), 10.0);  // ‖·‖ = 5 < 10
  EXPECT_EQ(values(ts[0]), (std::vector<double>{3, 4}));
  std::vector<Tensor> bad = {from_vector<double>({3, 4}, {2}), from_vector<double>({INFINITY}, {1})};
  clip_by_norm_(bad, sum_of_squares(bad), 1.0);
  EXPECT_EQ(values(bad[0]), (std::vector<double>{3, 4}));
  std::vector<Tensor> nan = {from_vector<double>({std::numeric_limits<double>::quiet_NaN(), 4}, {2})};
  clip_by_norm_(nan, sum_of_squares(nan), 1.0);
  EXPECT_EQ(values(nan[0])[1], 4.0);
}

TEST(GradNorm, ErrorsNameTheProblem) {
  const Tensor a = zeros({2});
  EXPECT_NE(error_of([&] { sum_of_squares({a, Tensor()}); }).find("sum_of_squares: tensor 1 is undefined"),
            std::string::npos);
  EXPECT_NE(error_of([&] { sum_of_squares({a, zeros({2}, DType::i64)}); })
                .find("sum_of_squares: tensor 1 has dtype i64 (expected a floating dtype)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { clip_by_norm_({a}, sum_of_squares({a}), 0.0); }).find("max_norm 0 must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { clip_by_norm_({a}, zeros({}), 1.0); }).find("sum_sq must be one f64 value on cpu"),
            std::string::npos);
}

TEST(GradNormCuda, MatchesTheCpuAcrossManyChunksAndLaunches) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  std::vector<Tensor> cpu_ts = mixed_tensors();
  // More chunks than one launch's table (120): 300 small tensors and a long one.
  for (int i = 0; i < 300; ++i) cpu_ts.push_back(random_tensor({17 + i}, DType::f32, -1, 1, 100 + i));
  cpu_ts.push_back(random_tensor({130 * kNormChunk + 5}, DType::f32, -1, 1, 999));
  std::vector<Tensor> gpu_ts;
  for (const Tensor& t : cpu_ts) gpu_ts.push_back(t.is_contiguous() ? t.to(gpu) : non_contiguous(t.contiguous().to(gpu)));
  const double ref = sum_of_squares(cpu_ts).item();
  Tensor s = sum_of_squares(gpu_ts);
  EXPECT_TRUE(s.device().is_cuda());
  EXPECT_NEAR(s.item(), ref, 1e-10 * ref);  // another order of the same double sums
  EXPECT_EQ(sum_of_squares(gpu_ts).item(), s.item()) << "deterministic";
  const double max_norm = 0.5 * std::sqrt(ref);
  cuda::reset_host_sync_count();
  clip_by_norm_(gpu_ts, s, max_norm);
  EXPECT_EQ(cuda::host_sync_count(), 0u) << "clipping must not read the norm back";
  clip_by_norm_(cpu_ts, sum_of_squares(cpu_ts), max_norm);
  for (size_t i = 0; i < cpu_ts.size(); i += 37) {
    SCOPED_TRACE(::testing::Message() << "tensor " << i);
    EXPECT_TRUE(all_close(gpu_ts[i].cpu().to(DType::f64), cpu_ts[i].to(DType::f64), 1e-6, 1e-12));
  }
}

TEST(GradNormCuda, ClipGradNormOnTheDeviceMakesNoHostSync) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  Variable p1(zeros({2}, DType::f32, gpu), true), p2(zeros({1}, DType::f32, gpu), true);
  p1.set_grad(from_vector<double>({3, 4}, {2}, DType::f32, gpu));
  p2.set_grad(from_vector<double>({12}, {1}, DType::f32, gpu));
  cuda::synchronize();
  cuda::reset_host_sync_count();
  Tensor norm = optim::clip_grad_norm_on_device({p1, p2}, 6.5);
  EXPECT_EQ(cuda::host_sync_count(), 0u) << ::testing::PrintToString(cuda::host_sync_reasons());
  EXPECT_NEAR(norm.item(), 13.0, 1e-9);
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_TRUE(all_close(p1.grad().cpu(), {3 * coef, 4 * coef}, 1e-6));
  EXPECT_NEAR(optim::grad_norm({p1, p2}), 6.5, 1e-5);
}
