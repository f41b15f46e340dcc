// Softmax over the last dim, forward and backward, on the CPU and (when a GPU is present) CUDA,
// at the attention shapes of the ViT recipes, (B·H·N, N), and a 1000-class classifier's logits.
// Napkin math: the forward reads x and writes y (2 · rows · N · 4 bytes, f32); the backward reads
// g and y and writes dx (3 · rows · N · 4 bytes). GB/s counts those bytes, not cache re-reads.
//
//   ./build/bench/bench_softmax                        all cases
//   ./build/bench/bench_softmax --benchmark_filter=cpu  one device
#include <benchmark/benchmark.h>

#include <string>

#include "ember/ember.h"

namespace {

struct Case {
  const char* name;
  int64_t rows, cols;
};

const Case kCases[] = {
    {"vit_cifar_attn_64x3x65", 64 * 3 * 65, 65},        // batch 64, 3 heads, 64 patches + cls
    {"vit_base_attn_64x12x197", 64 * 12 * 197, 197},    // batch 64, 12 heads, 196 patches + cls
    {"classifier_4096x1000", 4096, 1000},
};

void sync(ember::Device device) {
  if (device.is_cuda()) ember::cuda::synchronize();
}

void bench_forward(benchmark::State& state, Case c, ember::Device device) {
  ember::Generator gen(1);
  ember::Tensor x = ember::randn({c.rows, c.cols}, ember::DType::f32, device, &gen);  // (rows, N)
  for (auto _ : state) {
    ember::Tensor y = ember::softmax(x, -1);  // (rows, N)
    sync(device);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * static_cast<double>(x.nbytes()) * 1e-9 *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

void bench_backward(benchmark::State& state, Case c, ember::Device device) {
  ember::Generator gen(2);
  ember::Tensor y = ember::softmax(ember::randn({c.rows, c.cols}, ember::DType::f32, device, &gen), -1);
  ember::Tensor g = ember::randn({c.rows, c.cols}, ember::DType::f32, device, &gen);
  for (auto _ : state) {
    ember::Tensor dx = ember::softmax_backward(g, y, -1);  // (rows, N)
    sync(device);
    benchmark::DoNotOptimize(dx.data_ptr());
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * static_cast<double>(y.nbytes()) * 1e-9 *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

void register_device(ember::Device device) {
  const std::string dev = device.is_cpu() ? "cpu" : "cuda";
  for (const Case& c : kCases) {
    benchmark::RegisterBenchmark(("softmax_forward/" + dev + "/" + c.name).c_str(),
                                 [c, device](benchmark::State& s) { bench_forward(s, c, device); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("softmax_backward/" + dev + "/" + c.name).c_str(),
                                 [c, device](benchmark::State& s) { bench_backward(s, c, device); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_device(ember::Device::cpu());
  if (ember::cuda::is_available()) register_device(ember::Device::cuda(0));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
