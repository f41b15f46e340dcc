// batch_norm with its fused ReLU6 (training mode), forward and backward, at the shapes of
// tf_efficientnet_lite0 fine-tuned at 96×96, batch 64 (the recipe's step), beside a copy of the
// same tensor (one read and one write: what this machine's memory allows for one pass).
// Bandwidth-bound, so the figure is GB/s of the unavoidable traffic (f32):
//   forward   reads x, writes y                  2·N·C·L·4 bytes
//   backward  reads g and x, writes dx           3·N·C·L·4 bytes
//   copy      reads x, writes y                  2·N·C·L·4 bytes
// (per-channel tensors are O(C) and left out). CUDA variants are registered when a GPU is present
// and synchronize after every iteration.
//
//   ./bench/bench_batch_norm --benchmark_filter=cpu
#include <benchmark/benchmark.h>

#include <string>

#include "ember/ember.h"

using namespace ember;

namespace {

enum class Pass { forward, backward, copy };

struct Shape4 {
  int64_t N, C, H, W;
};

// The BatchNorm inputs of tf_efficientnet_lite0 at 96×96, batch 64: the widest early ones, where
// the bytes are, and the narrow late ones, where the planes are small.
const Shape4 kShapes[] = {
    {64, 32, 48, 48}, {64, 96, 48, 48}, {64, 144, 24, 24}, {64, 24, 24, 24},
    {64, 240, 12, 12}, {64, 480, 6, 6}, {64, 1152, 3, 3},
};

void run(benchmark::State& state, Device dev, Pass pass, Shape4 s) {
  Generator gen(1);
  const Tensor x = randn({s.N, s.C, s.H, s.W}, DType::f32, dev, &gen);
  const Tensor g = randn({s.N, s.C, s.H, s.W}, DType::f32, dev, &gen);
  const Tensor w = uniform({s.C}, 0.5, 1.5, DType::f32, dev, &gen);
  const Tensor b = uniform({s.C}, -0.5, 0.5, DType::f32, dev, &gen);
  Tensor rm = zeros({s.C}, DType::f32, dev), rv = ones({s.C}, DType::f32, dev);
  const BatchNormClamp relu6{0.0, 6.0};
  const BatchNormResult fwd = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-3, relu6);
  Tensor y = empty_like(x);
  for (auto _ : state) {
    if (pass == Pass::forward) {
      BatchNormResult r = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-3, relu6);
      benchmark::DoNotOptimize(r.out.data_ptr());
    } else if (pass == Pass::backward) {
      BatchNormGrads d = batch_norm_backward(g, x, w, fwd.save_mean, fwd.save_invstd, true, b, relu6);
      benchmark::DoNotOptimize(d.dx.data_ptr());
    } else {
      y.copy_(x);
      benchmark::DoNotOptimize(y.data_ptr());
    }
    if (dev.is_cuda()) cuda::synchronize();
  }
  const double elems = static_cast<double>(x.numel());
  const double bytes = elems * 4 * (pass == Pass::backward ? 3 : 2);
  state.counters["bytes"] = benchmark::Counter(bytes * state.iterations(), benchmark::Counter::kIsRate);
}

void register_all() {
  const std::pair<const char*, Pass> passes[] = {{"forward", Pass::forward}, {"backward", Pass::backward}, {"copy", Pass::copy}};
  std::vector<std::pair<const char*, Device>> devices{{"cpu", Device::cpu()}};
  if (cuda::is_available()) devices.push_back({"cuda", Device::cuda(0)});
  for (auto& [dev_name, dev] : devices)
    for (const Shape4& s : kShapes)
      for (auto& [pass_name, pass] : passes) {
        const std::string name = std::string("batch_norm_relu6/") + dev_name + "/" + pass_name + "/" + std::to_string(s.N) +
                                 "x" + std::to_string(s.C) + "x" + std::to_string(s.H) + "x" + std::to_string(s.W);
        Device d = dev;
        Pass p = pass;
        Shape4 sh = s;
        benchmark::RegisterBenchmark(name.c_str(), [d, p, sh](benchmark::State& st) { run(st, d, p, sh); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
