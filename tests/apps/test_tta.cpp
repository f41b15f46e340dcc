// Test-time augmentation (ember-predict --tta-flip / --tta-shift): the view helpers against
// index-by-index references on random images, and evaluate()'s averaged probabilities against
// the model run by hand on views built by those references; on a GPU (skipped, visibly, without
// one) the same views and probabilities from CUDA tensors.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "apps/common/data_setup.h"
#include "apps/common/models.h"
#include "apps/common/trainer.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "ember/ember.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::apps;

namespace {

// The reflected index: -1 -> 1, n -> n - 2 (the edge itself is not repeated).
int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * n - 2 - i;
  return i;
}

// out[n][c][y][x] = in[n][c][reflect(y + dy)][reflect(x + dx)], mirrored along x when `mirror`.
std::vector<float> reference_view(const std::vector<float>& in, int64_t N, int64_t C, int64_t H, int64_t W,
                                  int64_t dy, int64_t dx, bool mirror) {
  std::vector<float> out(in.size());
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        // Mirroring is applied to the moved image: view[x] = moved[W - 1 - x].
        const int64_t xm = mirror ? W - 1 - x : x;
        out[(p * H + y) * W + x] = in[(p * H + reflect(y + dy, H)) * W + reflect(xm + dx, W)];
      }
  return out;
}

Tensor random_images(int64_t N, int64_t C, int64_t H, int64_t W, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(static_cast<size_t>(N * C * H * W));
  for (float& f : v) f = dist(rng);
  return from_vector(v, {N, C, H, W});
}

}  // namespace

TEST(TestTimeViews, ShiftReflectMatchesTheIndexReference) {
  const int64_t N = 2, C = 3, H = 5, W = 7;
  Tensor x = random_images(N, C, H, W, 1);
  const std::vector<float> host = x.to_vector<float>();
  for (int64_t dy = -(H - 1); dy <= H - 1; ++dy)
    for (int64_t dx = -(W - 1); dx <= W - 1; ++dx) {
      EXPECT_EQ(shift_reflect(x, dy, dx).to_vector<float>(), reference_view(host, N, C, H, W, dy, dx, false))
          << "dy " << dy << " dx " << dx;
      EXPECT_EQ(flip_width(shift_reflect(x, dy, dx)).to_vector<float>(),
                reference_view(host, N, C, H, W, dy, dx, true))
          << "mirrored, dy " << dy << " dx " << dx;
    }
}

TEST(TestTimeViews, ShiftsAsLongAsTheSideAreRefused) {
  Tensor x = random_images(1, 1, 4, 6, 2);
  for (auto [dy, dx] : {std::pair<int64_t, int64_t>{4, 0}, {-4, 0}, {0, 6}, {0, -9}}) {
    try {
      shift_reflect(x, dy, dx);
      ADD_FAILURE() << "a shift of (" << dy << ", " << dx << ") on 4x6 images was accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("shift_reflect: a shift of"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(shift_reflect(from_vector(std::vector<float>(12, 0.f), {3, 4}), 1, 1), std::exception);
}

TEST(TestTimeViews, ViewCountsAndDescriptions) {
  EXPECT_EQ((TestTimeAugmentation{}).views(), 1);
  EXPECT_EQ((TestTimeAugmentation{true, 0}).views(), 2);
  EXPECT_EQ((TestTimeAugmentation{false, 3}).views(), 5);
  EXPECT_EQ((TestTimeAugmentation{true, 2}).views(), 10);
  EXPECT_EQ((TestTimeAugmentation{}).describe(), "none");
  EXPECT_EQ((TestTimeAugmentation{true, 0}).describe(), "flip (2 views)");
  EXPECT_EQ((TestTimeAugmentation{false, 3}).describe(), "shift 3 px (5 views)");
  EXPECT_EQ((TestTimeAugmentation{true, 2}).describe(), "flip + shift 2 px (10 views)");
}

namespace {

// effnet_tiny with 4 classes at `resolution` (spec filled in).
std::shared_ptr<nn::UnaryModule> tiny_model(int64_t resolution, ModelSpec& spec) {
  ModelOptions mo;
  mo.num_classes = 4;
  mo.resolution = resolution;
  return make_model("effnet_tiny", mo, &spec);
}

// evaluate() with `tta` against the model run by hand on every view of the loader's batches;
// `model_shift` is the shift in the model's pixels that `tta.shift` (stored pixels) must become.
void expect_views_averaged(int64_t resolution, const TestTimeAugmentation& tta, int64_t model_shift) {
  auto ds = std::make_shared<data::GeneratedDataset>(12, 4, 16, 7);  // 12 images of 16x16, 4 classes
  ModelSpec spec;
  auto model = tiny_model(resolution, spec);
  ASSERT_EQ(spec.resolution, resolution);
  // A fresh classifier's logits are nearly equal whatever the view; scaled up, each view's
  // probabilities differ (checked below), so a view left out or moved wrongly shows.
  for (auto& [name, t] : model->state_dict())
    if (name.rfind("classifier.", 0) == 0) t.copy_(mul(t, 5000.0));
  EvalOutput ev = evaluate(*model, ds, spec, Device::cpu(), /*batch=*/5, /*workers=*/0, tta);
  ASSERT_EQ(ev.probs.size(0), 12);

  NoGradGuard no_grad;
  model->eval();
  data::DataLoader loader(ds, eval_loader_options(ds, spec, 5, 0));
  std::vector<std::pair<int64_t, bool>> views;  // (shift index, mirrored)
  std::vector<std::pair<int64_t, int64_t>> shifts{{0, 0}};
  if (tta.shift > 0)
    for (int64_t dy : {-model_shift, model_shift})
      for (int64_t dx : {-model_shift, model_shift}) shifts.push_back({dy, dx});
  const std::vector<float> got = ev.probs.to_vector<float>();
  int64_t row = 0;
  for (const data::Batch& b : loader) {
    const int64_t N = b.images.size(0), C = b.images.size(1), H = b.images.size(2), W = b.images.size(3);
    ASSERT_EQ(H, resolution);
    const std::vector<float> host = b.images.contiguous().to_vector<float>();
    std::vector<double> sum(static_cast<size_t>(N * 4), 0.0), first;
    double spread = 0;  // the largest difference of a view's probabilities from the first view's
    int64_t count = 0;
    for (auto [dy, dx] : shifts)
      for (bool mirror : {false, true}) {
        if (mirror && !tta.flip) continue;
        Tensor view = from_vector(reference_view(host, N, C, H, W, dy, dx, mirror), {N, C, H, W});
        std::vector<float> logits = model->forward(Variable(view)).data().to_vector<float>();
        std::vector<double> p(static_cast<size_t>(N * 4));
        for (int64_t n = 0; n < N; ++n) {  // softmax by hand
          double mx = -1e300, z = 0;
          for (int64_t c = 0; c < 4; ++c) mx = std::max(mx, double(logits[n * 4 + c]));
          for (int64_t c = 0; c < 4; ++c) z += std::exp(double(logits[n * 4 + c]) - mx);
          for (int64_t c = 0; c < 4; ++c) p[n * 4 + c] = std::exp(double(logits[n * 4 + c]) - mx) / z;
        }
        if (first.empty()) first = p;
        for (size_t i = 0; i < p.size(); ++i) {
          sum[i] += p[i];
          spread = std::max(spread, std::abs(p[i] - first[i]));
        }
        ++count;
      }
    ASSERT_EQ(count, tta.views());
    EXPECT_GT(spread, 0.01) << "the views give nearly the same probabilities: this check could not tell them apart";
    for (int64_t n = 0; n < N; ++n, ++row)
      for (int64_t c = 0; c < 4; ++c)
        EXPECT_NEAR(got[row * 4 + c], sum[n * 4 + c] / count, 2e-5) << "image " << row << " class " << c;
  }
  EXPECT_EQ(row, 12);
}

}  // namespace

TEST(TestTimeViews, EvaluateAveragesTheTenViews) { expect_views_averaged(16, {true, 2}, 2); }

TEST(TestTimeViews, EvaluateShiftsWithoutFlip) { expect_views_averaged(16, {false, 3}, 3); }

TEST(TestTimeViews, EvaluateScalesTheShiftToTheModelsInput) {
  // 16x16 images resized to 40x40: 2 stored pixels are 5 of the model's.
  expect_views_averaged(40, {true, 2}, 5);
}

TEST(TestTimeViews, EvaluateRefusesAShiftAsLargeAsTheImage) {
  auto ds = std::make_shared<data::GeneratedDataset>(4, 4, 16, 7);
  ModelSpec spec;
  auto model = tiny_model(16, spec);
  try {
    evaluate(*model, ds, spec, Device::cpu(), 4, 0, {true, 16});
    ADD_FAILURE() << "a 16-pixel shift of 16x16 images was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("test-time shift of 16 pixels"), std::string::npos) << e.what();
  }
}

TEST(TestTimeViews, CudaViewsAndProbabilitiesMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  const int64_t N = 3, C = 3, H = 9, W = 11;
  Tensor x = random_images(N, C, H, W, 3);
  const std::vector<float> host = x.to_vector<float>();
  Tensor xg = x.to(Device::cuda());
  for (auto [dy, dx] : {std::pair<int64_t, int64_t>{0, 0}, {2, -3}, {-8, 10}, {5, 5}}) {
    EXPECT_EQ(shift_reflect(xg, dy, dx).cpu().to_vector<float>(), reference_view(host, N, C, H, W, dy, dx, false));
    EXPECT_EQ(flip_width(shift_reflect(xg, dy, dx)).cpu().to_vector<float>(),
              reference_view(host, N, C, H, W, dy, dx, true));
  }
  auto ds = std::make_shared<data::GeneratedDataset>(12, 4, 16, 7);
  ModelSpec spec;
  auto model = tiny_model(32, spec);
  EvalOutput cpu = evaluate(*model, ds, spec, Device::cpu(), 5, 0, {true, 2});
  model->to(Device::cuda());
  EvalOutput gpu = evaluate(*model, ds, spec, Device::cuda(), 5, 0, {true, 2});
  const std::vector<float> a = cpu.probs.to_vector<float>(), b = gpu.probs.to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << "entry " << i;
  EXPECT_EQ(cpu.names, gpu.names);
}
