// GeneratedDataset: synthetic images for tests, benchmarks and smoke-training without files.
//
// The recipe. Class c (0 <= c < num_classes <= 120) is a combination of three attributes:
//   shape    = c % 4              disk, square, triangle, ring
//   pattern  = (c / 4) % 5        horizontal stripes, vertical stripes, diagonal stripes (45°),
//                                 checkerboard, concentric rings
//   hue      = 60° · ((c % 4 + c / 4 + c / 20) % 6)      red, yellow, green, cyan, blue, magenta
// No single attribute names the class: with 20 classes the shape is shared by 5 classes, the
// pattern by 4 and the hue by 3 or 4, so a model has to see the shape and the pattern together.
// Each sample i draws, from Rng::derive(seed, i):
//   background  a linear gradient between two random low-saturation colours, random direction
//   distractor  with probability 0.6, a small solid shape of random kind and colour (behind)
//   object      centre in [0.3, 0.7]·size, radius in [0.18, 0.34]·size, random rotation of the
//               shape; pattern at the class orientation ± 15°, period 0.45-0.65 radius, random
//               phase; colour = class hue ± 20°, saturation 0.55-1, value 0.6-1, the pattern's
//               second colour the same at 0.3-0.95 of the value (faint patterns are hard on purpose)
//   noise       contrast 0.75-1.2 around mid-grey, then N(0, σ²) per pixel, σ in [0.03, 0.10]
// Edges are anti-aliased (coverage from the signed distance). The label of sample i is
// i % num_classes. Everything is a pure function of (seed, i, size), so the dataset needs no
// memory and any worker can produce any sample.
#include <algorithm>
#include <cmath>

#include "data/dataset.h"
#include "data/rng.h"

namespace ember::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Rgb {
  double r, g, b;
};

Rgb hsv_to_rgb(double h_deg, double s, double v) {
  double h = std::fmod(std::fmod(h_deg, 360.0) + 360.0, 360.0) / 60.0;
  double c = v * s, x = c * (1.0 - std::fabs(std::fmod(h, 2.0) - 1.0)), m = v - c;
  Rgb rgb{0, 0, 0};
  switch (static_cast<int>(h) % 6) {
    case 0: rgb = {c, x, 0}; break;
    case 1: rgb = {x, c, 0}; break;
    case 2: rgb = {0, c, x}; break;
    case 3: rgb = {0, x, c}; break;
    case 4: rgb = {x, 0, c}; break;
    default: rgb = {c, 0, x}; break;
  }
  return {rgb.r + m, rgb.g + m, rgb.b + m};
}

Rgb lerp(const Rgb& a, const Rgb& b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

// Signed distance (in pixels, negative inside) from (x, y), relative to the shape's centre and
// already rotated into the shape's frame, to a shape of the given kind and radius.
double shape_distance(int kind, double x, double y, double radius) {
  switch (kind) {
    case 0: return std::hypot(x, y) - radius;                                  // disk
    case 1: return std::max(std::fabs(x), std::fabs(y)) - 0.8 * radius;        // square
    case 2: {  // triangle: the outward normals at 90°, 210° and 330°
      constexpr double c30 = 0.86602540378443865;
      const double d = std::max({y, -c30 * x - 0.5 * y, c30 * x - 0.5 * y});
      return d - 0.55 * radius;
    }
    default: return std::fabs(std::hypot(x, y) - 0.7 * radius) - 0.3 * radius;  // ring
  }
}

// 1 on the pattern's first colour, 0 on its second; (u, v) in the pattern's frame.
double pattern_value(int pattern, double x, double y, double period, double phase) {
  auto stripe = [&](double t) { return std::sin(2 * kPi * (t / period + phase)) >= 0 ? 1.0 : 0.0; };
  switch (pattern) {
    case 0: return stripe(y);                                      // horizontal stripes
    case 1: return stripe(x);                                      // vertical stripes
    case 2: return stripe((x + y) * 0.70710678);                   // diagonal stripes
    case 3: return stripe(x) == stripe(y) ? 1.0 : 0.0;             // checkerboard
    default: return stripe(std::hypot(x, y));                      // concentric rings
  }
}

// N(0, 1) draws two at a time: Box-Muller gives a cosine and a sine value per pair of uniforms.
struct PairedNormal {
  double spare = 0;
  bool has_spare = false;
  double next(Rng& rng) {
    if (has_spare) {
      has_spare = false;
      return spare;
    }
    const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare = r * std::sin(2 * kPi * u2);
    has_spare = true;
    return r * std::cos(2 * kPi * u2);
  }
};

}  // namespace

GeneratedDataset::GeneratedDataset(int64_t n, int64_t num_classes, int64_t size, uint64_t seed)
    : n_(n), num_classes_(num_classes), size_(size), seed_(seed) {
  EMBER_CHECK(n >= 0, "GeneratedDataset: n must be >= 0, got ", n);
  EMBER_CHECK(num_classes >= 2 && num_classes <= 120, "GeneratedDataset: num_classes must be in [2, 120], got ",
              num_classes);
  EMBER_CHECK(size >= 8 && size <= 1024, "GeneratedDataset: size must be in [8, 1024], got ", size);
}

int64_t GeneratedDataset::label(int64_t i) const {
  check_index(i, "GeneratedDataset::label");
  return i % num_classes_;
}

std::vector<std::string> GeneratedDataset::class_names() const {
  static const char* shapes[] = {"disk", "square", "triangle", "ring"};
  static const char* patterns[] = {"hstripes", "vstripes", "dstripes", "checker", "rings"};
  static const char* hues[] = {"red", "yellow", "green", "cyan", "blue", "magenta"};
  std::vector<std::string> names;
  for (int64_t c = 0; c < num_classes_; ++c)
    names.push_back(std::string(hues[(c % 4 + c / 4 + c / 20) % 6]) + "_" + patterns[(c / 4) % 5] + "_" +
                    shapes[c % 4]);
  return names;
}

Sample GeneratedDataset::get(int64_t i) const {
  check_index(i, "GeneratedDataset::get");
  const int64_t c = label(i);
  const int shape = static_cast<int>(c % 4), pattern = static_cast<int>((c / 4) % 5);
  const double hue = 60.0 * static_cast<double>((c % 4 + c / 4 + c / 20) % 6);
  const double S = static_cast<double>(size_);
  Rng rng = Rng::derive(seed_, static_cast<uint64_t>(i), 0x9e4e);

  // Background gradient.
  const Rgb bg0 = hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0, 0.5), rng.uniform(0.2, 0.8));
  const Rgb bg1 = hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0, 0.5), rng.uniform(0.2, 0.8));
  const double bg_angle = rng.uniform(0, 2 * kPi);
  const double gx = std::cos(bg_angle) / S, gy = std::sin(bg_angle) / S;

  // Distractor.
  const bool has_distractor = rng.bernoulli(0.6);
  const int d_kind = static_cast<int>(rng.uniform_int(4));
  const double d_r = rng.uniform(0.08, 0.14) * S, d_x = rng.uniform(0.1, 0.9) * S, d_y = rng.uniform(0.1, 0.9) * S;
  const Rgb d_col = hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.3, 1), rng.uniform(0.3, 1));

  // Object.
  const double cx = rng.uniform(0.3, 0.7) * S, cy = rng.uniform(0.3, 0.7) * S;
  const double radius = rng.uniform(0.18, 0.34) * S;
  const double rot = rng.uniform(0, 2 * kPi);
  const double p_angle = rng.uniform(-15, 15) * kPi / 180;
  const double period = rng.uniform(0.45, 0.65) * radius, phase = rng.uniform(0, 1);
  const double value = rng.uniform(0.6, 1.0);
  const double obj_hue = hue + rng.uniform(-20, 20), sat = rng.uniform(0.55, 1.0);
  const Rgb col0 = hsv_to_rgb(obj_hue, sat, value);
  const Rgb col1 = hsv_to_rgb(obj_hue, sat, value * rng.uniform(0.3, 0.95));

  // Noise.
  const double contrast = rng.uniform(0.75, 1.2), sigma = rng.uniform(0.03, 0.10);

  PairedNormal noise;
  Sample s;
  s.label = c;
  s.name = "generated#" + std::to_string(i);
  s.image = empty({3, size_, size_}, DType::u8);
  uint8_t* out = s.image.data<uint8_t>();  // (3, S, S)
  const int64_t plane = size_ * size_;
  const double cr = std::cos(rot), sr = std::sin(rot), cp = std::cos(p_angle), sp = std::sin(p_angle);
  for (int64_t y = 0; y < size_; ++y) {
    for (int64_t x = 0; x < size_; ++x) {
      const double px = static_cast<double>(x) + 0.5, py = static_cast<double>(y) + 0.5;
      double t = std::clamp(0.5 + (px - S / 2) * gx + (py - S / 2) * gy, 0.0, 1.0);
      Rgb pix = lerp(bg0, bg1, t);
      if (has_distractor) {
        double cover = std::clamp(0.5 - shape_distance(d_kind, px - d_x, py - d_y, d_r), 0.0, 1.0);
        pix = lerp(pix, d_col, cover);
      }
      const double ox = px - cx, oy = py - cy;
      const double sx = cr * ox + sr * oy, sy = -sr * ox + cr * oy;  // the shape's frame
      const double cover = std::clamp(0.5 - shape_distance(shape, sx, sy, radius), 0.0, 1.0);
      if (cover > 0) {
        const double ux = cp * ox + sp * oy, uy = -sp * ox + cp * oy;  // the pattern's frame
        pix = lerp(pix, pattern_value(pattern, ux, uy, period, phase) > 0.5 ? col0 : col1, cover);
      }
      const double rgb[3] = {pix.r, pix.g, pix.b};
      for (int ch = 0; ch < 3; ++ch) {
        double v = 0.5 + (rgb[ch] - 0.5) * contrast + sigma * noise.next(rng);
        out[ch * plane + y * size_ + x] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
      }
    }
  }
  return s;
}

}  // namespace ember::data
