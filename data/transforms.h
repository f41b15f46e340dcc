// Transforms: what happens to an image between decoding and the batch.
//
// They work on CPU float32 images (3, H, W), or on batches (N, 3, H, W) where each image gets its
// own random draw. Pixel values are in [0, 1] until Normalize (the loader divides the decoded u8
// by 255 first). Each comes twice:
//   - a plain function that does exactly one thing (crop, hflip, resize_bilinear, normalize,
//     cutout, mixup_with, cutmix_with): deterministic, what the tests check;
//   - a transform type (RandomCrop, RandomHorizontalFlip, Resize, Normalize, Cutout, Mixup,
//     Cutmix) that draws its parameters from an Rng and calls the function.
// Image transforms compose into one `Transform` (a std::function) with Compose:
//   Transform train = Compose{{RandomCrop{32, 4}, RandomHorizontalFlip{}, Normalize::cifar10()}};
//   Tensor out = train(image, rng);   // rng: the sample's own stream (data/rng.h)
// Batch transforms (Mixup, Cutmix, MixupOrCutmix) take (images (N,3,H,W), labels (N) i64) and
// return the mixed images with soft targets (N, C) f32 whose rows sum to 1.
#pragma once
#include <array>
#include <functional>
#include <vector>

#include "data/rng.h"
#include "tensor/tensor.h"

namespace ember::data {

using Transform = std::function<Tensor(const Tensor& image, Rng& rng)>;

// ---- plain functions ---------------------------------------------------------------------------

// u8 (any shape) -> f32 in [0, 1] (v / 255).
Tensor to_float_image(const Tensor& image);

enum class PadMode {
  zero,     // outside pixels are 0
  reflect,  // mirrored about the edge pixel, which is not repeated: [a b c | b a] (NumPy "reflect")
};

// out[c, y, x] = image[c, top + y, left + x] for y < height, x < width; coordinates outside the
// image (top/left may be negative, the window may stick out) are filled according to `mode`.
// "Crop with padding p" is a window with top, left in [-p, H + p - height].
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width,
            PadMode mode = PadMode::zero);
// out[c, y, x] = image[c, y, W - 1 - x]
Tensor hflip(const Tensor& image);
// Bilinear, half-pixel centres (PyTorch align_corners=False, no antialiasing):
//   src_y = clamp((y + 0.5) · H / height - 0.5, 0, H - 1), likewise x; out = the 2x2 blend.
Tensor resize_bilinear(const Tensor& image, int64_t height, int64_t width);
// out[c] = (image[c] - mean[c]) / std[c]; mean and std have one entry per channel.
Tensor normalize(const Tensor& image, const std::vector<double>& mean, const std::vector<double>& std);
// The size x size square centred at (cy, cx), clipped to the image, set to `fill` (DeVries &
// Taylor, 2017: the centre may lie anywhere, so the square may be partly outside).
Tensor cutout(const Tensor& image, int64_t cy, int64_t cx, int64_t size, float fill = 0.0f);

// ---- random image transforms ------------------------------------------------------------------

// Applies each transform in order, all drawing from the same rng.
struct Compose {
  std::vector<Transform> transforms;
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

// A random height x width window of the image zero- or reflect-padded by `padding` on each side.
struct RandomCrop {
  int64_t height, width;
  int64_t padding = 0;
  PadMode mode = PadMode::reflect;
  RandomCrop(int64_t size, int64_t padding = 0, PadMode mode = PadMode::reflect)
      : height(size), width(size), padding(padding), mode(mode) {}
  RandomCrop(int64_t height, int64_t width, int64_t padding, PadMode mode)
      : height(height), width(width), padding(padding), mode(mode) {}
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

struct RandomHorizontalFlip {
  double p = 0.5;
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

// To the model's resolution (deterministic; takes an rng only to be a Transform).
struct Resize {
  int64_t height, width;
  explicit Resize(int64_t size) : height(size), width(size) {}
  Resize(int64_t height, int64_t width) : height(height), width(width) {}
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

// Per-channel statistics of the training images in [0, 1] (CIFAR: over the 50,000 training
// images of the binary release; ImageNet: the usual torchvision constants).
inline const std::vector<double> kCifar10Mean{0.4914, 0.4822, 0.4465};
inline const std::vector<double> kCifar10Std{0.2470, 0.2435, 0.2616};
inline const std::vector<double> kCifar100Mean{0.5071, 0.4865, 0.4409};
inline const std::vector<double> kCifar100Std{0.2673, 0.2564, 0.2762};
inline const std::vector<double> kImageNetMean{0.485, 0.456, 0.406};
inline const std::vector<double> kImageNetStd{0.229, 0.224, 0.225};

struct Normalize {
  std::vector<double> mean, std;
  static Normalize cifar10() { return {kCifar10Mean, kCifar10Std}; }
  static Normalize cifar100() { return {kCifar100Mean, kCifar100Std}; }
  static Normalize imagenet() { return {kImageNetMean, kImageNetStd}; }
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

// With probability p, one size x size square at a uniformly random centre set to `fill` (0 after
// Normalize is the mean colour).
struct Cutout {
  int64_t size;
  double p = 1.0;
  float fill = 0.0f;
  Tensor operator()(const Tensor& image, Rng& rng) const;
};

// ---- batch transforms: mixup and cutmix ------------------------------------------------------

struct MixedBatch {
  Tensor images;   // (N, 3, H, W) f32
  Tensor targets;  // (N, C) f32, rows sum to 1
};

// (N) i64 labels -> (N, C) f32: 1 - smoothing + smoothing / C on the label, smoothing / C elsewhere.
Tensor one_hot(const Tensor& labels, int64_t num_classes, double smoothing = 0.0);

// Mixup (Zhang et al., 2018) with a given weight and partner permutation:
//   images[i]  = lam · x[i] + (1 - lam) · x[perm[i]]
//   targets[i] = lam · onehot(y[i]) + (1 - lam) · onehot(y[perm[i]])      (with smoothing)
MixedBatch mixup_with(const Tensor& images, const Tensor& labels, int64_t num_classes, double lam,
                      const std::vector<int64_t>& perm, double smoothing = 0.0);
// CutMix (Yun et al., 2019): the box rows [y0, y1) x cols [x0, x1) of image i comes from perm[i];
// the target weight is the area actually kept, lam = 1 - (y1 - y0)(x1 - x0) / (H W).
MixedBatch cutmix_with(const Tensor& images, const Tensor& labels, int64_t num_classes, int64_t y0, int64_t y1,
                       int64_t x0, int64_t x1, const std::vector<int64_t>& perm, double smoothing = 0.0);

// lam ~ Beta(alpha, alpha), perm a random permutation.
struct Mixup {
  int64_t num_classes;
  double alpha = 0.2;
  double smoothing = 0.0;
  MixedBatch operator()(const Tensor& images, const Tensor& labels, Rng& rng) const;
};

// lam ~ Beta(alpha, alpha); a box of (1 - lam) of the area, sides sqrt(1 - lam)·(H, W), centred
// uniformly at random and clipped to the image.
struct Cutmix {
  int64_t num_classes;
  double alpha = 1.0;
  double smoothing = 0.0;
  MixedBatch operator()(const Tensor& images, const Tensor& labels, Rng& rng) const;
};

// Per batch: cutmix with probability switch_prob, mixup otherwise (timm's recipe).
struct MixupOrCutmix {
  Mixup mixup;
  Cutmix cutmix;
  double switch_prob = 0.5;
  MixedBatch operator()(const Tensor& images, const Tensor& labels, Rng& rng) const;
};

}  // namespace ember::data
