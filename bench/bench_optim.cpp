// Optimizer updates: the fused AdamW / SGD kernels against the same update composed from
// elementwise tensor ops (one pass over memory vs about a dozen).
//
// Napkin math: AdamW reads w, g, m, v and writes w, m, v: 7 × 4 bytes per f32 element, so it is
// bandwidth-bound; the bytes rate below counts those 28 bytes (the composed version moves far more).
// SGD with momentum reads w, g, b and writes w, b: 20 bytes per element.
//   ./bench/bench_optim --benchmark_filter=adamw
// CUDA: cuda/adamw_per_tensor vs cuda/adamw_multi_tensor on a ViT-Ti's parameter list (144 launches vs one).
#include <benchmark/benchmark.h>

#include "ember/ember.h"

using namespace ember;

namespace {

constexpr double kAdamBytesPerElement = 7 * 4;
constexpr double kSgdBytesPerElement = 5 * 4;

void set_rate(benchmark::State& state, double bytes_per_element) {
  // printed as bytes=<N>G/s
  state.counters["bytes"] = benchmark::Counter(bytes_per_element * static_cast<double>(state.range(0)),
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}

void sync_if_cuda(Device d) {
  if (d.is_cuda()) cuda::synchronize();
}

struct AdamTensors {
  Tensor w, g, m, v;
  explicit AdamTensors(int64_t n, Device d)
      : w(randn({n}, DType::f32, d)), g(randn({n}, DType::f32, d)), m(zeros({n}, DType::f32, d)),
        v(zeros({n}, DType::f32, d)) {}
};

AdamWStep adamw_step() { return {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.05, .step = 10}; }

void adamw_fused(benchmark::State& state, Device d) {
  AdamTensors t(state.range(0), d);
  const AdamWStep s = adamw_step();
  for (auto _ : state) {
    adamw_update(t.w, t.g, t.m, t.v, s);
    sync_if_cuda(d);
  }
  set_rate(state, kAdamBytesPerElement);
}

// The same update as eleven elementwise ops, each a full pass over memory.
void adamw_composed(benchmark::State& state, Device d) {
  AdamTensors t(state.range(0), d);
  const AdamWStep s = adamw_step();
  const double bc1 = 1 - std::pow(s.beta1, s.step), bc2 = 1 - std::pow(s.beta2, s.step);
  for (auto _ : state) {
    mul_(t.w, 1 - s.lr * s.weight_decay);
    Tensor dm = sub(t.g, t.m);
    mul_(dm, 1 - s.beta1);
    add_(t.m, dm);
    Tensor g2 = mul(t.g, t.g);
    mul_(g2, 1 - s.beta2);
    mul_(t.v, s.beta2);
    add_(t.v, g2);
    Tensor denom = add(mul(sqrt(t.v), 1 / std::sqrt(bc2)), s.eps);
    Tensor update = mul(div(t.m, denom), -s.lr / bc1);
    add_(t.w, update);
    sync_if_cuda(d);
  }
  set_rate(state, kAdamBytesPerElement);
}

void sgd_fused(benchmark::State& state, Device d) {
  const int64_t n = state.range(0);
  Tensor w = randn({n}, DType::f32, d), g = randn({n}, DType::f32, d), b = zeros({n}, DType::f32, d);
  SGDStep s{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true, .first_step = false};
  for (auto _ : state) {
    sgd_update(w, g, b, s);
    sync_if_cuda(d);
  }
  set_rate(state, kSgdBytesPerElement);
}

void sgd_composed(benchmark::State& state, Device d) {
  const int64_t n = state.range(0);
  Tensor w = randn({n}, DType::f32, d), g = randn({n}, DType::f32, d), b = zeros({n}, DType::f32, d);
  for (auto _ : state) {
    Tensor dp = add(g, mul(w, 1e-4));
    mul_(b, 0.9);
    add_(b, dp);
    add_(dp, mul(b, 0.9));  // Nesterov
    add_(w, mul(dp, -0.1));
    sync_if_cuda(d);
  }
  set_rate(state, kSgdBytesPerElement);
}

// A model's worth of parameters (ViT-Ti-like: 12 blocks of qkv, proj, two MLP layers, two
// norms, with their biases: 144 tensors, 5.5M elements), updated per tensor (one launch each)
// or by the multi-tensor kernel (one launch). Launch overhead is what differs.
std::vector<int64_t> vit_ti_sizes() {
  std::vector<int64_t> sizes;
  for (int b = 0; b < 12; ++b)
    for (int64_t s : {192, 192, 192 * 576, 576, 192 * 192, 192, 192, 192, 192 * 768, 768, 768 * 192, 192})
      sizes.push_back(s);
  return sizes;
}

void adamw_model(benchmark::State& state, bool multi) {
  std::vector<Tensor> w, g, m, v;
  std::vector<AdamWStep> steps;
  int64_t total = 0;
  for (int64_t n : vit_ti_sizes()) {
    w.push_back(randn({n}, DType::f32, Device::cuda()));
    g.push_back(randn({n}, DType::f32, Device::cuda()));
    m.push_back(zeros({n}, DType::f32, Device::cuda()));
    v.push_back(zeros({n}, DType::f32, Device::cuda()));
    steps.push_back(adamw_step());
    total += n;
  }
  for (auto _ : state) {
    if (multi) {
      adamw_update_multi(w, g, m, v, steps);
    } else {
      for (size_t i = 0; i < w.size(); ++i) adamw_update(w[i], g[i], m[i], v[i], steps[i]);
    }
    cuda::synchronize();
  }
  state.counters["bytes"] = benchmark::Counter(kAdamBytesPerElement * static_cast<double>(total),
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
  state.counters["tensors"] = static_cast<double>(w.size());
}

void register_all(const char* device_name, Device d) {
  auto add = [&](const char* name, void (*fn)(benchmark::State&, Device)) {
    benchmark::RegisterBenchmark((std::string(name) + "/" + device_name).c_str(),
                                 [fn, d](benchmark::State& s) { fn(s, d); })
        ->RangeMultiplier(16)
        ->Range(1 << 12, d.is_cuda() ? 1 << 26 : 1 << 24)
        ->UseRealTime();
  };
  add("adamw_fused", adamw_fused);
  add("adamw_composed", adamw_composed);
  add("sgd_fused", sgd_fused);
  add("sgd_composed", sgd_composed);
}

}  // namespace

int main(int argc, char** argv) {
  register_all("cpu", Device::cpu());
  if (cuda::is_available()) {
    register_all("cuda", Device::cuda());
    benchmark::RegisterBenchmark("cuda/adamw_per_tensor/vit_ti_params", [](benchmark::State& s) { adamw_model(s, false); })
        ->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("cuda/adamw_multi_tensor/vit_ti_params", [](benchmark::State& s) { adamw_model(s, true); })
        ->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
