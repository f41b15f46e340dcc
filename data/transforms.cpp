// Image and batch transforms: plain loops over contiguous float32 CPU images.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ember::data {

namespace {

// An image (C, H, W) or a batch (N, C, H, W) as a contiguous f32 CPU tensor with its sizes.
struct Images {
  Tensor t;
  int64_t n = 1, c = 0, h = 0, w = 0;
  bool batched = false;
  const float* data() const { return t.data<float>(); }
};

Images prepare(const Tensor& image, const char* op) {
  EMBER_CHECK(image.defined(), op, ": undefined image");
  EMBER_CHECK(image.device().is_cpu() && image.dtype() == DType::f32 && (image.dim() == 3 || image.dim() == 4), op,
              ": expects a CPU f32 image (C, H, W) or batch (N, C, H, W), got ", dtype_name(image.dtype()), " ",
              image.shape_str(), " on ", image.device().str());
  Images im;
  im.t = image.contiguous();
  im.batched = image.dim() == 4;
  if (im.batched) im.n = image.size(0);
  im.c = image.size(-3);
  im.h = image.size(-2);
  im.w = image.size(-1);
  return im;
}

Tensor output_like(const Images& in, int64_t h, int64_t w) {
  return in.batched ? empty({in.n, in.c, h, w}, DType::f32) : empty({in.c, h, w}, DType::f32);
}

// Calls fn(image (C, H, W), rng) for each image of a batch and stacks the results.
template <class Fn>
Tensor per_image(const Tensor& image, Rng& rng, const char* op, Fn&& fn) {
  Images in = prepare(image, op);
  if (!in.batched) return fn(in.t, rng);
  Tensor out;
  for (int64_t i = 0; i < in.n; ++i) {
    Tensor one = fn(in.t.select(0, i), rng).contiguous();
    if (!out.defined()) {
      Shape shape = one.shape();
      shape.insert(shape.begin(), in.n);
      out = empty(shape, DType::f32);
    }
    EMBER_CHECK(static_cast<size_t>(one.numel()) * in.n == static_cast<size_t>(out.numel()), op,
                ": images of one batch came out with different shapes");
    std::memcpy(out.data<float>() + i * one.numel(), one.data<float>(), one.nbytes());
  }
  return out;
}

// Index into [0, n) mirrored about the edge pixels (no repeat), for any integer i.
int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

void check_labels(const Tensor& images, const Tensor& labels, int64_t num_classes, const char* op) {
  EMBER_CHECK(images.defined() && images.dim() == 4, op, ": expects images (N, C, H, W), got ",
              images.defined() ? images.shape_str() : std::string("undefined"));
  EMBER_CHECK(labels.defined() && labels.dim() == 1 && labels.dtype() == DType::i64 && labels.device().is_cpu() &&
                  labels.size(0) == images.size(0),
              op, ": expects labels (", images.size(0), ") i64 on the CPU, got ",
              labels.defined() ? labels.str() : std::string("undefined"));
  EMBER_CHECK(num_classes > 0, op, ": num_classes must be > 0, got ", num_classes);
}

void check_perm(const std::vector<int64_t>& perm, int64_t n, const char* op) {
  EMBER_CHECK(static_cast<int64_t>(perm.size()) == n, op, ": perm has ", perm.size(), " entries, expected ", n);
  for (int64_t p : perm) EMBER_CHECK(p >= 0 && p < n, op, ": perm entry ", p, " out of range [0, ", n, ")");
}

}  // namespace

// ---- plain functions ---------------------------------------------------------------------------

Tensor to_float_image(const Tensor& image) {
  EMBER_CHECK(image.defined() && image.dtype() == DType::u8 && image.device().is_cpu(),
              "to_float_image: expects a u8 CPU tensor, got ", image.defined() ? image.str() : "undefined");
  Tensor src = image.contiguous();
  Tensor out = empty(image.shape(), DType::f32);
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]) * (1.0f / 255.0f);
  return out;
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width, PadMode mode) {
  Images in = prepare(image, "crop");
  EMBER_CHECK(height > 0 && width > 0, "crop: window ", height, "x", width, " must be positive");
  EMBER_CHECK(in.h > 0 && in.w > 0, "crop: empty image ", image.shape_str());
  // Source row and column of each output row and column; -1 for a zero-padded one.
  auto source = [mode](int64_t start, int64_t count, int64_t size) {
    std::vector<int64_t> src(static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = start + k;
      src[k] = mode == PadMode::reflect ? reflect_index(i, size) : (i >= 0 && i < size ? i : -1);
    }
    return src;
  };
  const std::vector<int64_t> rows = source(top, height, in.h), cols = source(left, width, in.w);
  Tensor out = output_like(in, height, width);
  const float* src = in.data();
  float* dst = out.data<float>();
  for (int64_t p = 0; p < in.n * in.c; ++p) {  // p: one (image, channel) plane
    const float* s = src + p * in.h * in.w;
    float* d = dst + p * height * width;
    for (int64_t y = 0; y < height; ++y) {
      float* drow = d + y * width;
      if (rows[y] < 0) {
        std::fill(drow, drow + width, 0.0f);
        continue;
      }
      const float* srow = s + rows[y] * in.w;
      for (int64_t x = 0; x < width; ++x) drow[x] = cols[x] < 0 ? 0.0f : srow[cols[x]];
    }
  }
  return out;
}

Tensor hflip(const Tensor& image) {
  Images in = prepare(image, "hflip");
  Tensor out = output_like(in, in.h, in.w);
  const float* s = in.data();
  float* d = out.data<float>();
  for (int64_t row = 0; row < in.n * in.c * in.h; ++row)
    for (int64_t x = 0; x < in.w; ++x) d[row * in.w + x] = s[row * in.w + (in.w - 1 - x)];
  return out;
}

Tensor resize_bilinear(const Tensor& image, int64_t height, int64_t width) {
  Images in = prepare(image, "resize_bilinear");
  EMBER_CHECK(height > 0 && width > 0, "resize_bilinear: target size ", height, "x", width, " must be positive");
  if (height == in.h && width == in.w) return in.t.clone();
  // Source coordinates, lower neighbour and weight of the upper one, per output row and column.
  auto taps = [](int64_t out_size, int64_t in_size, std::vector<int64_t>& i0, std::vector<int64_t>& i1,
                 std::vector<float>& frac) {
    const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
    for (int64_t o = 0; o < out_size; ++o) {
      double src = std::clamp((static_cast<double>(o) + 0.5) * scale - 0.5, 0.0, static_cast<double>(in_size - 1));
      int64_t lo = static_cast<int64_t>(std::floor(src));
      i0.push_back(lo);
      i1.push_back(std::min(lo + 1, in_size - 1));
      frac.push_back(static_cast<float>(src - static_cast<double>(lo)));
    }
  };
  std::vector<int64_t> y0, y1, x0, x1;
  std::vector<float> fy, fx;
  taps(height, in.h, y0, y1, fy);
  taps(width, in.w, x0, x1, fx);
  Tensor out = output_like(in, height, width);
  const float* src = in.data();
  float* dst = out.data<float>();
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const float* s = src + p * in.h * in.w;
    float* d = dst + p * height * width;
    for (int64_t y = 0; y < height; ++y) {
      const float* r0 = s + y0[y] * in.w;
      const float* r1 = s + y1[y] * in.w;
      for (int64_t x = 0; x < width; ++x) {
        float top = r0[x0[x]] + (r0[x1[x]] - r0[x0[x]]) * fx[x];
        float bottom = r1[x0[x]] + (r1[x1[x]] - r1[x0[x]]) * fx[x];
        d[y * width + x] = top + (bottom - top) * fy[y];
      }
    }
  }
  return out;
}

Tensor normalize(const Tensor& image, const std::vector<double>& mean, const std::vector<double>& std) {
  Images in = prepare(image, "normalize");
  EMBER_CHECK(static_cast<int64_t>(mean.size()) == in.c && static_cast<int64_t>(std.size()) == in.c,
              "normalize: ", in.c, " channels but ", mean.size(), " means and ", std.size(), " stds");
  for (double s : std) EMBER_CHECK(s > 0, "normalize: std must be > 0, got ", s);
  Tensor out = output_like(in, in.h, in.w);
  const float* s = in.data();
  float* d = out.data<float>();
  const int64_t plane = in.h * in.w;
  for (int64_t p = 0; p < in.n * in.c; ++p) {
    const auto m = static_cast<float>(mean[p % in.c]), inv = static_cast<float>(1.0 / std[p % in.c]);
    for (int64_t i = 0; i < plane; ++i) d[p * plane + i] = (s[p * plane + i] - m) * inv;
  }
  return out;
}

Tensor cutout(const Tensor& image, int64_t cy, int64_t cx, int64_t size, float fill) {
  Images in = prepare(image, "cutout");
  EMBER_CHECK(size >= 0, "cutout: size must be >= 0, got ", size);
  Tensor out = in.t.clone();
  const int64_t ya = std::clamp(cy - size / 2, int64_t{0}, in.h), yb = std::clamp(cy - size / 2 + size, int64_t{0}, in.h);
  const int64_t xa = std::clamp(cx - size / 2, int64_t{0}, in.w), xb = std::clamp(cx - size / 2 + size, int64_t{0}, in.w);
  float* d = out.data<float>();
  for (int64_t p = 0; p < in.n * in.c; ++p)
    for (int64_t y = ya; y < yb; ++y)
      for (int64_t x = xa; x < xb; ++x) d[(p * in.h + y) * in.w + x] = fill;
  return out;
}

// ---- random image transforms ------------------------------------------------------------------

Tensor Compose::operator()(const Tensor& image, Rng& rng) const {
  Tensor x = image;
  for (const Transform& t : transforms) x = t(x, rng);
  return x;
}

Tensor RandomCrop::operator()(const Tensor& image, Rng& rng) const {
  return per_image(image, rng, "RandomCrop", [&](const Tensor& img, Rng& r) {
    const int64_t h = img.size(1), w = img.size(2);
    EMBER_CHECK(h + 2 * padding >= height && w + 2 * padding >= width, "RandomCrop: a ", height, "x", width,
                " window does not fit a ", h, "x", w, " image padded by ", padding);
    const int64_t top = r.uniform_int(-padding, h + padding - height);
    const int64_t left = r.uniform_int(-padding, w + padding - width);
    return crop(img, top, left, height, width, mode);
  });
}

Tensor RandomHorizontalFlip::operator()(const Tensor& image, Rng& rng) const {
  return per_image(image, rng, "RandomHorizontalFlip",
                   [&](const Tensor& img, Rng& r) { return r.bernoulli(p) ? hflip(img) : img; });
}

Tensor Resize::operator()(const Tensor& image, Rng&) const { return resize_bilinear(image, height, width); }

Tensor Normalize::operator()(const Tensor& image, Rng&) const { return normalize(image, mean, std); }

Tensor Cutout::operator()(const Tensor& image, Rng& rng) const {
  return per_image(image, rng, "Cutout", [&](const Tensor& img, Rng& r) {
    if (!r.bernoulli(p)) return img;
    const int64_t cy = r.uniform_int(img.size(1)), cx = r.uniform_int(img.size(2));
    return cutout(img, cy, cx, size, fill);
  });
}

// ---- batch transforms ----------------------------------------------------------------------------

Tensor one_hot(const Tensor& labels, int64_t num_classes, double smoothing) {
  EMBER_CHECK(labels.defined() && labels.dim() == 1 && labels.dtype() == DType::i64 && labels.device().is_cpu(),
              "one_hot: expects (N) i64 CPU labels, got ", labels.defined() ? labels.str() : "undefined");
  EMBER_CHECK(num_classes > 0, "one_hot: num_classes must be > 0, got ", num_classes);
  EMBER_CHECK(smoothing >= 0 && smoothing <= 1, "one_hot: smoothing must be in [0, 1], got ", smoothing);
  const int64_t n = labels.size(0);
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  Tensor out = full({n, num_classes}, smoothing / static_cast<double>(num_classes), DType::f32);  // (N, C)
  float* d = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    EMBER_CHECK(y[i] >= 0 && y[i] < num_classes, "one_hot: label ", y[i], " at ", i, " outside [0, ", num_classes,
                ")");
    d[i * num_classes + y[i]] += static_cast<float>(1.0 - smoothing);
  }
  return out;
}

MixedBatch mixup_with(const Tensor& images, const Tensor& labels, int64_t num_classes, double lam,
                      const std::vector<int64_t>& perm, double smoothing) {
  check_labels(images, labels, num_classes, "mixup");
  Images in = prepare(images, "mixup");
  check_perm(perm, in.n, "mixup");
  EMBER_CHECK(lam >= 0 && lam <= 1, "mixup: lam must be in [0, 1], got ", lam);
  MixedBatch out{output_like(in, in.h, in.w), Tensor()};
  const int64_t per = in.c * in.h * in.w;
  const float a = static_cast<float>(lam), b = static_cast<float>(1.0 - lam);
  const float* s = in.data();
  float* d = out.images.data<float>();
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t k = 0; k < per; ++k) d[i * per + k] = a * s[i * per + k] + b * s[perm[i] * per + k];
  Tensor hot = one_hot(labels, num_classes, smoothing);  // (N, C)
  out.targets = empty({in.n, num_classes}, DType::f32);
  const float* h = hot.data<float>();
  float* t = out.targets.data<float>();
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t c = 0; c < num_classes; ++c)
      t[i * num_classes + c] = a * h[i * num_classes + c] + b * h[perm[i] * num_classes + c];
  return out;
}

MixedBatch cutmix_with(const Tensor& images, const Tensor& labels, int64_t num_classes, int64_t y0, int64_t y1,
                       int64_t x0, int64_t x1, const std::vector<int64_t>& perm, double smoothing) {
  check_labels(images, labels, num_classes, "cutmix");
  Images in = prepare(images, "cutmix");
  check_perm(perm, in.n, "cutmix");
  EMBER_CHECK(0 <= y0 && y0 <= y1 && y1 <= in.h && 0 <= x0 && x0 <= x1 && x1 <= in.w, "cutmix: box rows [", y0, ", ",
              y1, ") cols [", x0, ", ", x1, ") outside a ", in.h, "x", in.w, " image");
  const double lam = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(in.h * in.w);
  // Targets are mixup's with the kept area as the weight; images start as copies.
  MixedBatch out = mixup_with(in.t, labels, num_classes, lam, perm, smoothing);
  out.images = in.t.clone();
  const float* s = in.data();
  float* d = out.images.data<float>();
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t c = 0; c < in.c; ++c)
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) {
          d[((i * in.c + c) * in.h + y) * in.w + x] = s[((perm[i] * in.c + c) * in.h + y) * in.w + x];
        }
  return out;
}

MixedBatch Mixup::operator()(const Tensor& images, const Tensor& labels, Rng& rng) const {
  EMBER_CHECK(alpha > 0, "Mixup: alpha must be > 0, got ", alpha);
  const double lam = rng.beta(alpha, alpha);
  const std::vector<int64_t> perm = rng.permutation(images.defined() && images.dim() == 4 ? images.size(0) : 0);
  return mixup_with(images, labels, num_classes, lam, perm, smoothing);
}

MixedBatch Cutmix::operator()(const Tensor& images, const Tensor& labels, Rng& rng) const {
  EMBER_CHECK(alpha > 0, "Cutmix: alpha must be > 0, got ", alpha);
  check_labels(images, labels, num_classes, "Cutmix");
  const int64_t h = images.size(2), w = images.size(3);
  const double lam = rng.beta(alpha, alpha), ratio = std::sqrt(1.0 - lam);
  const auto cut_h = static_cast<int64_t>(static_cast<double>(h) * ratio);
  const auto cut_w = static_cast<int64_t>(static_cast<double>(w) * ratio);
  const int64_t cy = rng.uniform_int(h), cx = rng.uniform_int(w);
  const int64_t y0 = std::clamp(cy - cut_h / 2, int64_t{0}, h), y1 = std::clamp(cy + cut_h / 2, int64_t{0}, h);
  const int64_t x0 = std::clamp(cx - cut_w / 2, int64_t{0}, w), x1 = std::clamp(cx + cut_w / 2, int64_t{0}, w);
  const std::vector<int64_t> perm = rng.permutation(images.size(0));
  return cutmix_with(images, labels, num_classes, y0, y1, x0, x1, perm, smoothing);
}

MixedBatch MixupOrCutmix::operator()(const Tensor& images, const Tensor& labels, Rng& rng) const {
  return rng.bernoulli(switch_prob) ? cutmix(images, labels, rng) : mixup(images, labels, rng);
}

}  // namespace ember::data
