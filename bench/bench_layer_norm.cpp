// layer_norm forward, backward, and both, at the ViT shapes ember trains:
//   ViT-Tiny/16 at 128 px, batch 64:  64·65 rows × 192
//   ViT-Base/16 at 224 px, batch 64:  64·197 rows × 768
// Bandwidth-bound, so the figure is GB/s of the unavoidable traffic (napkin math, f32):
//   forward  reads x, writes y                  2·R·D·4 bytes
//   backward reads g and x, writes dx           3·R·D·4 bytes
// (mean, rstd, γ, β, dγ, dβ are O(R + D) and left out). CUDA variants are registered when a
// GPU is present and synchronize after every iteration.
//
//   ./bench/bench_layer_norm --benchmark_filter=cpu
#include <benchmark/benchmark.h>

#include "ember/ember.h"

using namespace ember;

namespace {

enum class Pass { forward, backward, both };

struct Inputs {
  Tensor x, g, w, b;
  LayerNormResult fwd;
};

Inputs make_inputs(int64_t rows, int64_t D, Device dev) {
  Generator gen(1);
  Inputs in;
  in.x = randn({rows, D}, DType::f32, dev, &gen);
  in.g = randn({rows, D}, DType::f32, dev, &gen);
  in.w = uniform({D}, 0.5, 1.5, DType::f32, dev, &gen);
  in.b = uniform({D}, -0.5, 0.5, DType::f32, dev, &gen);
  in.fwd = layer_norm(in.x, in.w, in.b);
  return in;
}

void run(benchmark::State& state, Device dev, Pass pass) {
  const int64_t rows = state.range(0), D = state.range(1);
  Inputs in = make_inputs(rows, D, dev);
  for (auto _ : state) {
    if (pass != Pass::backward) {
      LayerNormResult r = layer_norm(in.x, in.w, in.b);
      benchmark::DoNotOptimize(r.out.data_ptr());
    }
    if (pass != Pass::forward) {
      LayerNormGrads d = layer_norm_backward(in.g, in.x, in.w, in.fwd.mean, in.fwd.rstd);
      benchmark::DoNotOptimize(d.dx.data_ptr());
    }
    if (dev.is_cuda()) cuda::synchronize();
  }
  const double elems = static_cast<double>(rows * D);
  const double bytes = elems * 4 * (pass == Pass::forward ? 2 : pass == Pass::backward ? 3 : 5);
  state.counters["bytes"] = benchmark::Counter(bytes * state.iterations(), benchmark::Counter::kIsRate);  // "12.3G/s"
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["D"] = static_cast<double>(D);
}

void register_all() {
  struct Variant {
    const char* name;
    Pass pass;
  };
  const Variant variants[] = {{"forward", Pass::forward}, {"backward", Pass::backward}, {"fwd+bwd", Pass::both}};
  std::vector<std::pair<const char*, Device>> devices{{"cpu", Device::cpu()}};
  if (cuda::is_available()) devices.push_back({"cuda", Device::cuda(0)});
  for (auto& [dev_name, dev] : devices) {
    for (const Variant& v : variants) {
      std::string name = std::string("layer_norm/") + dev_name + "/" + v.name;
      Device d = dev;
      Pass p = v.pass;
      benchmark::RegisterBenchmark(name.c_str(), [d, p](benchmark::State& s) { run(s, d, p); })
          ->Args({64 * 65, 192})
          ->Args({64 * 197, 768})
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
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
