// Random tensors from the counter-based Philox generator (tensor/philox.h): the same seed gives
// the same numbers on the CPU and on CUDA.
//   rand:  U[low, high)      randn: N(mean, std^2)      bernoulli: 1 with probability p
#pragma once
#include <cstdint>
#include <mutex>

#include "tensor/tensor.h"

namespace ember {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset);
  // Reserves one draw: returns {seed, offset} and advances the offset.
  std::pair<uint64_t, uint64_t> next();

 private:
  mutable std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds the default generator

Tensor rand(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(), Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32, Device device = Device::cpu(),
               Generator* gen = nullptr);
Tensor randn(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(), Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double std, DType dtype = DType::f32, Device device = Device::cpu(),
              Generator* gen = nullptr);
// `first`: the tensor is elements [first, first + numel) of a larger draw (element i of a draw
// is philox(seed, offset, i)): a rank's rows of a mask drawn for a whole global batch.
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Device device = Device::cpu(),
                 Generator* gen = nullptr, uint64_t first = 0);
// Integers uniformly in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::i64, Device device = Device::cpu(),
               Generator* gen = nullptr);

// What a kernel needs to fill a tensor (shared by random_cpu.cpp and random_cuda.cu).
enum class RandomKind { uniform, normal, bernoulli, randint };
struct RandomParams {
  RandomKind kind;
  double a, b;  // uniform: low, high; normal: mean, std; bernoulli: p; randint: low, high
  uint64_t seed, offset;
  uint64_t first = 0;  // out's element i is element first + i of the draw
};

}  // namespace ember
