// Scaled dot-product attention throughput, side by side in one run: the fused blocked CPU
// kernel (forward; backward from the saved out and lse) against the same forward composed
// from ember primitives (matmul, max, exp, sum, div: the N×M matrix materialized), and the
// CUDA path when a GPU is present. f32. FLOPs count the matrix products only:
// forward 4·B·H·N·M·d, backward 10·B·H·N·M·d (with dv = d).
//
//   ./bench/bench_attention --benchmark_min_time=0.5
// Threads: EMBER_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "ember/ember.h"

namespace {

using namespace ember;

struct AttentionShape {
  std::string name;
  int64_t b, h, n, m, d;
};

const std::vector<AttentionShape> kShapes{
    {"vit_tiny_64x3x65x65x64", 64, 3, 65, 65, 64},  // ViT-Tiny on 32×32 images, patch 4: 64 tokens + cls
    {"seq512_2x4x512x512x64", 2, 4, 512, 512, 64},
    {"cross_8x4x128x256x32", 8, 4, 128, 256, 32},
};

int bench_threads() {
  const char* env = std::getenv("EMBER_BENCH_THREADS");
  int n = env ? std::atoi(env) : 2;
  return n > 0 ? n : 2;
}

struct Inputs {
  Tensor q, k, v, g;
};

Inputs make_inputs(const AttentionShape& s, Device device) {
  Generator gen(1);
  auto r = [&](int64_t rows) { return randn({s.b, s.h, rows, s.d}, DType::f32, Device::cpu(), &gen).to(device); };
  return {r(s.n), r(s.m), r(s.m), r(s.n)};
}

void set_flops(benchmark::State& state, const AttentionShape& s, double per_nmd) {
  const double flops = per_nmd * static_cast<double>(s.b) * s.h * s.n * s.m * s.d;
  state.counters["GFLOP"] = benchmark::Counter(static_cast<double>(state.iterations()) * flops * 1e-9,
                                               benchmark::Counter::kIsRate);
}

void sync_if_cuda(Device device) {
  if (device.is_cuda()) cuda::synchronize();
}

void bench_fused_forward(benchmark::State& state, AttentionShape s, Device device) {
  cpu::set_num_threads(bench_threads());
  Inputs in = make_inputs(s, device);
  for (auto _ : state) {
    AttentionForward f = attention_forward(in.q, in.k, in.v);
    sync_if_cuda(device);
    benchmark::DoNotOptimize(f.out.data_ptr());
  }
  set_flops(state, s, 4);
}

void bench_fused_backward(benchmark::State& state, AttentionShape s, Device device) {
  cpu::set_num_threads(bench_threads());
  Inputs in = make_inputs(s, device);
  AttentionForward f = attention_forward(in.q, in.k, in.v);
  for (auto _ : state) {
    AttentionGrads g = attention_backward(in.g, in.q, in.k, in.v, f.out, f.lse);
    sync_if_cuda(device);
    benchmark::DoNotOptimize(g.dq.data_ptr());
  }
  set_flops(state, s, 10);
}

// softmax(q·kᵀ·s)·v from primitives, the score matrix materialized.
void bench_composed_forward(benchmark::State& state, AttentionShape s, Device device) {
  cpu::set_num_threads(bench_threads());
  Inputs in = make_inputs(s, device);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  for (auto _ : state) {
    Tensor scores = mul(matmul(in.q, in.k.transpose(-2, -1)), scale);  // (B, H, N, M)
    Tensor e = exp(sub(scores, max(scores, {-1}, true)));
    Tensor out = matmul(div(e, sum(e, {-1}, true)), in.v);
    sync_if_cuda(device);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  set_flops(state, s, 4);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<Device> devices{Device::cpu()};
  if (cuda::is_available()) devices.push_back(Device::cuda(0));
  for (Device device : devices) {
    const std::string dev = device.is_cpu() ? "cpu/" : "cuda/";
    const auto unit = device.is_cpu() ? benchmark::kMillisecond : benchmark::kMicrosecond;
    for (const AttentionShape& s : kShapes) {
      benchmark::RegisterBenchmark((dev + "fused_forward/" + s.name).c_str(), bench_fused_forward, s, device)
          ->UseRealTime()->Unit(unit);
      benchmark::RegisterBenchmark((dev + "composed_forward/" + s.name).c_str(), bench_composed_forward, s, device)
          ->UseRealTime()->Unit(unit);
      benchmark::RegisterBenchmark((dev + "fused_backward/" + s.name).c_str(), bench_fused_backward, s, device)
          ->UseRealTime()->Unit(unit);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
