#include "tensor/ops/random.h"

#include "tensor/dispatch.h"
#include "tensor/ops/random_kernels.h"

namespace ember {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  seed_ = seed;
  offset_ = 0;
}
void Generator::set_offset(uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  offset_ = offset;
}
std::pair<uint64_t, uint64_t> Generator::next() {
  std::lock_guard<std::mutex> lock(mu_);
  return {seed_, offset_++};
}

Generator& default_generator() {
  static Generator g;
  return g;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

static Tensor draw(const Shape& shape, DType dtype, Device device, Generator* gen, RandomKind kind, double a,
                   double b, const char* op, uint64_t first = 0) {
  Tensor out = empty(shape, dtype, device);
  auto [seed, offset] = (gen ? *gen : default_generator()).next();
  RandomParams p{kind, a, b, seed, offset, first};
  dispatch(op, device,
           [&] { cpu::random_fill(out, p); },
           [&] { cuda::random_fill(out, p); });
  return out;
}

Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return uniform(shape, 0.0, 1.0, dtype, device, gen);
}
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Device device, Generator* gen) {
  EMBER_CHECK(is_floating(dtype), "uniform: dtype ", dtype_name(dtype), " is not floating");
  EMBER_CHECK(low <= high, "uniform: low ", low, " > high ", high);
  return draw(shape, dtype, device, gen, RandomKind::uniform, low, high, "uniform");
}
Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return normal(shape, 0.0, 1.0, dtype, device, gen);
}
Tensor normal(const Shape& shape, double mean, double std, DType dtype, Device device, Generator* gen) {
  EMBER_CHECK(is_floating(dtype), "normal: dtype ", dtype_name(dtype), " is not floating");
  EMBER_CHECK(std >= 0, "normal: std must be >= 0, got ", std);
  return draw(shape, dtype, device, gen, RandomKind::normal, mean, std, "normal");
}
Tensor bernoulli(const Shape& shape, double p, DType dtype, Device device, Generator* gen, uint64_t first) {
  EMBER_CHECK(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got ", p);
  return draw(shape, dtype, device, gen, RandomKind::bernoulli, p, 0, "bernoulli", first);
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Device device, Generator* gen) {
  EMBER_CHECK(low < high, "randint: empty range [", low, ", ", high, ")");
  return draw(shape, dtype, device, gen, RandomKind::randint, double(low), double(high), "randint");
}

}  // namespace ember
