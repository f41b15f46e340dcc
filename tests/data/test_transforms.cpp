// Transforms against plain float64 references written here: crop with padding, flip, bilinear
// resize, normalize, cutout, mixup and cutmix targets; random transforms reproducible by seed.
#include <array>
#include <cmath>
#include <set>

#include "data/transforms.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::data;
using ember::testing::all_close;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

Tensor image(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  return random_tensor({c, h, w}, DType::f32, 0.0, 1.0, seed);
}

// Reference: pixel (y, x) of channel c, with out-of-range coordinates padded.
double padded(const std::vector<double>& v, int64_t h, int64_t w, int64_t c, int64_t y, int64_t x, bool reflect) {
  if (reflect) {
    while (y < 0 || y >= h) y = y < 0 ? -y : 2 * (h - 1) - y;
    while (x < 0 || x >= w) x = x < 0 ? -x : 2 * (w - 1) - x;
  } else if (y < 0 || y >= h || x < 0 || x >= w) {
    return 0.0;
  }
  return v[(c * h + y) * w + x];
}

template <class Fn>
void expect_error(Fn&& fn, const std::string& piece) {
  try {
    fn();
    ADD_FAILURE() << "expected an ember::Error containing '" << piece << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(piece), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Transforms, HflipIsAnExactMirror) {
  for (Shape shape : {Shape{3, 5, 7}, Shape{2, 3, 4, 6}}) {
    Tensor x = random_tensor(shape, DType::f32, 0, 1, 3);
    Tensor y = hflip(x);
    ASSERT_EQ(y.shape(), shape);
    auto vx = values(x), vy = values(y);
    const int64_t w = shape.back();
    for (size_t i = 0; i < vx.size(); ++i) {
      const int64_t col = static_cast<int64_t>(i) % w, row_start = static_cast<int64_t>(i) - col;
      ASSERT_EQ(vy[i], vx[row_start + (w - 1 - col)]);
    }
    EXPECT_EQ(values(hflip(y)), vx);
  }
  // a non-contiguous input gives the same result
  Tensor x = image(3, 4, 5, 4);
  EXPECT_EQ(values(hflip(ember::testing::non_contiguous(x))), values(hflip(x)));
}

TEST(Transforms, CropWithZeroAndReflectPadding) {
  const int64_t c = 3, h = 6, w = 5;
  Tensor x = image(c, h, w, 5);
  auto v = values(x);
  struct Window {
    int64_t top, left, height, width;
  };
  for (bool reflect : {false, true}) {
    for (Window win : {Window{-2, -3, 6, 5}, Window{1, 0, 4, 5}, Window{3, 2, 6, 6}, Window{-4, -4, 3, 3}}) {
      Tensor out = crop(x, win.top, win.left, win.height, win.width, reflect ? PadMode::reflect : PadMode::zero);
      ASSERT_EQ(out.shape(), (Shape{c, win.height, win.width}));
      std::vector<double> ref;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t y = 0; y < win.height; ++y)
          for (int64_t xx = 0; xx < win.width; ++xx)
            ref.push_back(padded(v, h, w, ch, win.top + y, win.left + xx, reflect));
      EXPECT_EQ(values(out), ref) << (reflect ? "reflect" : "zero") << " window " << win.top << "," << win.left;
    }
  }
}

TEST(Transforms, RandomCropPicksAWindowOfThePaddedImage) {
  const int64_t h = 8, w = 8, pad = 2;
  Tensor x = image(3, h, w, 6);
  auto v = values(x);
  RandomCrop rc(8, pad, PadMode::zero);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (uint64_t s = 0; s < 60; ++s) {
    Rng rng(s);
    auto out = values(rc(x, rng));
    ASSERT_EQ(out.size(), 3u * 8 * 8);
    // find the offset this crop came from
    bool found = false;
    for (int64_t top = -pad; top <= pad && !found; ++top)
      for (int64_t left = -pad; left <= pad && !found; ++left) {
        bool match = true;
        for (int64_t ch = 0; ch < 3 && match; ++ch)
          for (int64_t y = 0; y < 8 && match; ++y)
            for (int64_t xx = 0; xx < 8 && match; ++xx)
              match = out[(ch * 8 + y) * 8 + xx] == padded(v, h, w, ch, top + y, left + xx, false);
        if (match) {
          found = true;
          seen.insert({top, left});
        }
      }
    EXPECT_TRUE(found) << "seed " << s;
  }
  EXPECT_GT(seen.size(), 10u);  // offsets are spread over the 25 possible
  // same seed, same crop; a batch crops each image on its own
  Rng a(9), b(9);
  EXPECT_EQ(values(rc(x, a)), values(rc(x, b)));
  Tensor batch = random_tensor({4, 3, 8, 8}, DType::f32, 0, 1, 7);
  Rng r(1);
  EXPECT_EQ(RandomCrop(6, 1, PadMode::reflect)(batch, r).shape(), (Shape{4, 3, 6, 6}));
  expect_error([&] { Rng q; RandomCrop(12, 1)(x, q); }, "does not fit");
}

TEST(Transforms, RandomHorizontalFlipFlipsAboutHalfTheTime) {
  Tensor x = image(3, 4, 6, 8);
  auto flipped = values(hflip(x)), same = values(x);
  int flips = 0;
  for (uint64_t s = 0; s < 200; ++s) {
    Rng rng(s);
    auto out = values(RandomHorizontalFlip{0.5}(x, rng));
    ASSERT_TRUE(out == flipped || out == same);
    flips += out == flipped;
  }
  EXPECT_GT(flips, 70);
  EXPECT_LT(flips, 130);
}

TEST(Transforms, ResizeBilinearMatchesReference) {
  for (auto [h, w, oh, ow] : {std::array<int64_t, 4>{4, 5, 9, 7}, {8, 8, 3, 5}, {5, 3, 5, 3}, {1, 4, 3, 8}}) {
    Tensor x = image(3, h, w, 9 + h);
    auto v = values(x);
    Tensor out = resize_bilinear(x, oh, ow);
    ASSERT_EQ(out.shape(), (Shape{3, oh, ow}));
    std::vector<double> ref;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xx = 0; xx < ow; ++xx) {
          double sy = std::min(std::max((y + 0.5) * h / oh - 0.5, 0.0), double(h - 1));
          double sx = std::min(std::max((xx + 0.5) * w / ow - 0.5, 0.0), double(w - 1));
          int64_t y0 = int64_t(std::floor(sy)), x0 = int64_t(std::floor(sx));
          int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
          double fy = sy - y0, fx = sx - x0;
          auto at = [&, h = h, w = w](int64_t yy, int64_t xq) { return v[(c * h + yy) * w + xq]; };
          ref.push_back((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
                        fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1)));
        }
    EXPECT_TRUE(all_close(out, ref, 1e-5, 1e-6)) << h << "x" << w << " -> " << oh << "x" << ow;
  }
  // a constant image stays constant; 2x upscale of 2 pixels gives the quarter points
  Tensor row = from_vector<float>({0.f, 1.f}, {1, 1, 2});
  EXPECT_TRUE(all_close(resize_bilinear(row, 1, 4), std::vector<double>{0, 0.25, 0.75, 1}));
  Rng rng;
  EXPECT_EQ(Resize(16)(image(3, 4, 4, 1), rng).shape(), (Shape{3, 16, 16}));
}

TEST(Transforms, NormalizeAndToFloat) {
  Tensor x = image(3, 4, 5, 11);
  auto v = values(x);
  Tensor out = normalize(x, kCifar10Mean, kCifar10Std);
  std::vector<double> ref(v.size());
  for (size_t i = 0; i < v.size(); ++i) ref[i] = (v[i] - kCifar10Mean[i / 20]) / kCifar10Std[i / 20];
  EXPECT_TRUE(all_close(out, ref, 1e-5, 1e-6));
  Rng rng;
  EXPECT_TRUE(all_close(Normalize::imagenet()(x, rng), normalize(x, kImageNetMean, kImageNetStd)));
  Tensor batch = random_tensor({2, 3, 2, 2}, DType::f32, 0, 1, 12);
  auto vb = values(batch);
  auto nb = values(normalize(batch, {0.5, 0.25, 0.0}, {2.0, 1.0, 0.5}));
  for (size_t i = 0; i < vb.size(); ++i) {
    const size_t c = (i / 4) % 3;
    const double m[3] = {0.5, 0.25, 0.0}, s[3] = {2.0, 1.0, 0.5};
    EXPECT_NEAR(nb[i], (vb[i] - m[c]) / s[c], 1e-6);
  }
  Tensor u8 = from_vector<uint8_t>({0, 51, 255, 128}, {1, 2, 2});
  EXPECT_TRUE(all_close(to_float_image(u8), std::vector<double>{0, 0.2, 1, 128 / 255.0}, 1e-6, 1e-7));
  expect_error([&] { normalize(x, {0.5}, {0.5}); }, "3 channels but 1 means");
  expect_error([&] { hflip(x.to(DType::f64)); }, "expects a CPU f32 image");
  expect_error([&] { hflip(random_tensor({5, 5}, DType::f32)); }, "[5, 5]");
}

TEST(Transforms, CutoutZeroesAClippedSquare) {
  Tensor x = image(3, 6, 6, 13);
  auto v = values(x);
  auto out = values(cutout(x, 1, 4, 4, -1.0f));  // rows [-1, 3) -> [0, 3), cols [2, 6)
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 6; ++y)
      for (int64_t xx = 0; xx < 6; ++xx) {
        const size_t i = (c * 6 + y) * 6 + xx;
        const bool inside = y < 3 && xx >= 2;
        EXPECT_EQ(out[i], inside ? -1.0 : v[i]) << c << "," << y << "," << xx;
      }
  Rng rng(3);
  auto r = values(Cutout{2}(x, rng));
  int changed = 0;
  for (size_t i = 0; i < v.size(); ++i) changed += r[i] != v[i];
  EXPECT_GT(changed, 0);
  EXPECT_LE(changed, 3 * 4);
}

TEST(Transforms, ComposeAppliesInOrder) {
  Tensor x = image(3, 6, 6, 14);
  Compose tf{{RandomCrop(4, 0), RandomHorizontalFlip{1.0}, Normalize{{0, 0, 0}, {0.5, 0.5, 0.5}}}};
  Rng a(5), b(5);
  Tensor out = tf(x, a);
  Tensor ref = normalize(hflip(RandomCrop(4, 0)(x, b)), {0, 0, 0}, {0.5, 0.5, 0.5});
  EXPECT_EQ(values(out), values(ref));
}

TEST(Transforms, MixupTargetsSumToOneAndImagesBlend) {
  Tensor x = random_tensor({4, 3, 2, 2}, DType::f32, 0, 1, 15);
  Tensor y = from_vector<int64_t>({0, 2, 1, 2}, {4});
  std::vector<int64_t> perm = {2, 0, 3, 1};
  MixedBatch m = mixup_with(x, y, 3, 0.7, perm);
  ASSERT_EQ(m.targets.shape(), (Shape{4, 3}));
  ASSERT_EQ(m.targets.dtype(), DType::f32);
  auto vx = values(x), vi = values(m.images), vt = values(m.targets);
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t k = 0; k < 12; ++k) EXPECT_NEAR(vi[i * 12 + k], 0.7 * vx[i * 12 + k] + 0.3 * vx[perm[i] * 12 + k], 1e-6);
    double sum = 0;
    for (int64_t c = 0; c < 3; ++c) {
      double ref = 0.7 * (y.to_vector<int64_t>()[i] == c) + 0.3 * (y.to_vector<int64_t>()[perm[i]] == c);
      EXPECT_NEAR(vt[i * 3 + c], ref, 1e-6);
      sum += vt[i * 3 + c];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
  // random lam and perm; smoothing keeps the rows summing to 1
  for (uint64_t s = 0; s < 5; ++s) {
    Rng rng(s);
    MixedBatch r = Mixup{3, 0.4, 0.1}(x, y, rng);
    auto t = values(r.targets);
    for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(t[i * 3] + t[i * 3 + 1] + t[i * 3 + 2], 1.0, 1e-6);
    for (double tv : t) EXPECT_GE(tv, 0.1 / 3 - 1e-6);
  }
  expect_error([&] { mixup_with(x, y, 3, 0.5, {0, 1}); }, "perm has 2 entries");
  expect_error([&] { mixup_with(x, y.to(DType::i32), 3, 0.5, perm); }, "i64");
  expect_error([&] { one_hot(y, 2); }, "label 2");
}

TEST(Transforms, CutmixPastesTheBoxAndWeighsTargetsByArea) {
  Tensor x = random_tensor({3, 2, 4, 4}, DType::f32, 0, 1, 16);
  Tensor y = from_vector<int64_t>({0, 1, 2}, {3});
  std::vector<int64_t> perm = {1, 2, 0};
  MixedBatch m = cutmix_with(x, y, 3, 1, 3, 0, 2, perm);  // 2x2 box of 16 pixels: lam = 0.75
  auto vx = values(x), vi = values(m.images), vt = values(m.targets);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t yy = 0; yy < 4; ++yy)
        for (int64_t xx = 0; xx < 4; ++xx) {
          const bool in_box = yy >= 1 && yy < 3 && xx < 2;
          const int64_t src = in_box ? perm[i] : i;
          EXPECT_EQ(vi[((i * 2 + c) * 4 + yy) * 4 + xx], vx[((src * 2 + c) * 4 + yy) * 4 + xx]);
        }
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(vt[i * 3 + i], 0.75, 1e-6);
    EXPECT_NEAR(vt[i * 3 + perm[i]], 0.25, 1e-6);
  }
  Rng rng(2);
  MixedBatch r = MixupOrCutmix{Mixup{3}, Cutmix{3}, 0.5}(x, y, rng);
  auto t = values(r.targets);
  for (int64_t i = 0; i < 3; ++i) EXPECT_NEAR(t[i * 3] + t[i * 3 + 1] + t[i * 3 + 2], 1.0, 1e-6);
  expect_error([&] { cutmix_with(x, y, 3, 0, 5, 0, 1, perm); }, "outside a 4x4 image");
}
