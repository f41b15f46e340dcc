// Optimizer updates: the fused AdamW / SGD kernels against the same update composed from
// elementwise tensor ops (one pass over memory vs about a dozen).
//
// Napkin math: AdamW reads w, g, m, v and writes w, m, v: 7 × 4 bytes per f32 element, so it is
// bandwidth-bound; the bytes rate below counts those 28 bytes (the composed version moves far more).
// SGD with momentum reads w, g, b and writes w, b: 20 bytes per element.
//   ./bench/bench_optim --benchmark_filter=adamw
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
  if (cuda::is_available()) register_all("cuda", Device::cuda());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
