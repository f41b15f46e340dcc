// Elementwise throughput: add (same shape, and a row broadcast over a matrix) and gelu at
// 1M–16M f32 elements, in GB/s of the bytes the op must move (inputs read once, output written
// once). The CUDA variants are registered when a GPU is present.
//
//   ./bench/bench_elementwise --benchmark_counters_tabular=true
//
// Napkin math: add moves 12 bytes an element, broadcast add ~8, gelu 8; all are memory bound,
// so the ceiling is the memory bandwidth (CPU: a few 10s of GB/s; H100/H200: ~3000+ GB/s).
#include <benchmark/benchmark.h>

#include "ember/ember.h"

using namespace ember;

namespace {

constexpr int64_t kRow = 1024;  // the broadcast operand's length: x (N/1024, 1024) + row (1024)

void sync(Device device) {
  if (device.is_cuda()) cuda::synchronize();
}

void report(benchmark::State& state, double bytes_per_iter, int64_t n) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["elements"] = static_cast<double>(n);
}

void BM_add(benchmark::State& state, Device device) {
  const int64_t n = state.range(0);
  Tensor a = rand({n}, DType::f32, device), b = rand({n}, DType::f32, device);  // (N), (N)
  Tensor out = empty({n}, DType::f32, device);                                   // (N)
  for (auto _ : state) {
    binary_into(BinaryOp::add, out, a, b);
    sync(device);
  }
  report(state, 3.0 * n * sizeof(float), n);
}

void BM_add_broadcast_row(benchmark::State& state, Device device) {
  const int64_t n = state.range(0);
  Tensor x = rand({n / kRow, kRow}, DType::f32, device);    // (N/1024, 1024)
  Tensor row = rand({kRow}, DType::f32, device);            // (1024)
  Tensor out = empty({n / kRow, kRow}, DType::f32, device);  // (N/1024, 1024)
  for (auto _ : state) {
    binary_into(BinaryOp::add, out, x, row);
    sync(device);
  }
  report(state, 2.0 * n * sizeof(float) + kRow * sizeof(float), n);
}

void BM_gelu(benchmark::State& state, Device device) {
  const int64_t n = state.range(0);
  Tensor x = randn({n}, DType::f32, device);  // (N)
  for (auto _ : state) {
    Tensor y = gelu(x);  // (N), from the caching allocator after the first iteration
    benchmark::DoNotOptimize(y.data_ptr());
    sync(device);
  }
  report(state, 2.0 * n * sizeof(float), n);
}

void BM_gelu_backward(benchmark::State& state, Device device) {
  const int64_t n = state.range(0);
  Tensor x = randn({n}, DType::f32, device), g = randn({n}, DType::f32, device);  // (N), (N)
  for (auto _ : state) {
    Tensor dx = unary_backward(UnaryOp::gelu, g, x, Tensor());  // (N)
    benchmark::DoNotOptimize(dx.data_ptr());
    sync(device);
  }
  report(state, 3.0 * n * sizeof(float), n);
}

void register_all(const char* suffix, Device device) {
  auto reg = [&](const char* name, void (*fn)(benchmark::State&, Device)) {
    benchmark::RegisterBenchmark((std::string(name) + "/" + suffix).c_str(), fn, device)
        ->RangeMultiplier(4)
        ->Range(1 << 20, 1 << 24)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  };
  reg("add", BM_add);
  reg("add_broadcast_row", BM_add_broadcast_row);
  reg("gelu", BM_gelu);
  reg("gelu_backward", BM_gelu_backward);
}

}  // namespace

int main(int argc, char** argv) {
  register_all("cpu", Device::cpu());
  if (cuda::is_available()) register_all("cuda", Device::cuda(0));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
