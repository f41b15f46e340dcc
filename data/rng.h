// Rng: the data pipeline's random numbers. A counter-based Philox4x32-10 stream (tensor/philox.h)
// named by (seed, stream): the numbers a sample's augmentation draws depend only on the loader's
// seed, the epoch and the sample's index, never on which worker thread runs it or when. That is
// what makes a DataLoader's output identical for 0, 1 or 8 workers.
//
//   Rng rng(seed, stream);             // a fresh stream; draws are a pure function of (seed, stream)
//   Rng rng = Rng::derive(seed, a, b);  // stream named by two integers (e.g. epoch, sample index)
#pragma once
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "tensor/philox.h"

namespace ember::data {

// SplitMix64 finalizer: a bijective 64-bit mix, used to combine integers into seeds.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) : key_(seed), stream_(stream) {}
  static Rng derive(uint64_t seed, uint64_t a, uint64_t b = 0) { return Rng(mix64(seed ^ mix64(a)), mix64(b) ^ a); }

  uint32_t next_u32() {
    if (lane_ == 4) {
      block_ = philox4x32_10(counter_++, stream_, key_);
      lane_ = 0;
    }
    return block_.c[lane_++];
  }
  uint64_t next_u64() {
    uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }
  // U[0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // An integer uniformly in [0, n) (Lemire's multiply-shift with rejection: no modulo bias).
  int64_t uniform_int(int64_t n) {
    if (n <= 1) return 0;
    uint64_t range = static_cast<uint64_t>(n);
    uint64_t threshold = (0 - range) % range;
    for (;;) {
      unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * range;
      if (static_cast<uint64_t>(m) >= threshold) return static_cast<int64_t>(m >> 64);
    }
  }
  // An integer uniformly in [lo, hi] (both ends included).
  int64_t uniform_int(int64_t lo, int64_t hi) { return lo + uniform_int(hi - lo + 1); }
  bool bernoulli(double p) { return uniform() < p; }
  // N(0, 1) by Box-Muller.
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through the boost U^(1/shape).
  double gamma(double shape) {
    if (shape < 1.0) return gamma(shape + 1.0) * std::pow(uniform() + 1e-300, 1.0 / shape);
    double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = normal(), v = 1.0 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
  // Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
  double beta(double a, double b) {
    double x = gamma(a), y = gamma(b);
    return x + y > 0 ? x / (x + y) : 0.5;
  }
  // A uniformly random permutation of [0, n) (Fisher-Yates).
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    std::iota(p.begin(), p.end(), int64_t{0});
    shuffle(p);
    return p;
  }
  template <class T> void shuffle(std::vector<T>& v) {
    for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) std::swap(v[i], v[uniform_int(i + 1)]);
  }

 private:
  uint64_t key_;
  uint64_t stream_;
  uint64_t counter_ = 0;
  Philox4x32 block_{};
  int lane_ = 4;
};

}  // namespace ember::data
