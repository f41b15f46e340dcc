// GEMM throughput, side by side in one run: ember's CPU matmul (Eigen products split into
// panels across threads) against a plain Eigen product on Eigen's own threads and OpenBLAS
// cblas_sgemm, all on the same number of threads, and on a GPU each hand-written CUDA kernel
// version and cuBLAS. f32, row-major C (m, n) = A (m, k) · B (k, n). The counter GFLOP is
// shown as a rate (GFLOP=…/s): 2mnk / time.
//
//   ./bench/bench_matmul --benchmark_min_time=0.5
// Threads: EMBER_BENCH_THREADS (default 2) for both ember and OpenBLAS. OpenBLAS chooses its
// kernels from the CPU at run time (printed in the context); OPENBLAS_CORETYPE=Haswell or
// SkylakeX forces its AVX2 or AVX-512 kernels where its detection falls back to an older core.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdlib>
#include <string>
#include <vector>

#include "ember/ember.h"

#ifdef EMBER_BENCH_HAVE_BLAS
#include <cblas.h>
#endif

namespace {

using namespace ember;

struct GemmShape {
  std::string name;
  int64_t m, k, n;
};

// Square sizes, and the four GEMMs of a ViT-Tiny block on a batch of 64 images of 65 tokens
// (4160 rows, width 192, MLP 768).
const std::vector<GemmShape> kShapes{
    {"square_256", 256, 256, 256},       {"square_512", 512, 512, 512},
    {"square_1024", 1024, 1024, 1024},   {"square_2048", 2048, 2048, 2048},
    {"vit_qkv_4160x192x576", 4160, 192, 576}, {"vit_proj_4160x192x192", 4160, 192, 192},
    {"vit_fc1_4160x192x768", 4160, 192, 768}, {"vit_fc2_4160x768x192", 4160, 768, 192},
};

int bench_threads() {
  const char* env = std::getenv("EMBER_BENCH_THREADS");
  int n = env ? std::atoi(env) : 2;
  return n > 0 ? n : 2;
}

void set_flops(benchmark::State& state, const GemmShape& s) {
  const double flops = 2.0 * static_cast<double>(s.m) * s.n * s.k;
  state.counters["GFLOP"] = benchmark::Counter(static_cast<double>(state.iterations()) * flops * 1e-9,
                                                 benchmark::Counter::kIsRate);
}

void bench_ember_cpu(benchmark::State& state, GemmShape s) {
  cpu::set_num_threads(bench_threads());
  Generator gen(1);
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen), b = rand({s.k, s.n}, DType::f32, Device::cpu(), &gen);
  for (auto _ : state) {
    Tensor c = matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, s);
}

// The plain Eigen product with Eigen's own threads, for comparison with ember's panels.
void bench_eigen_threads(benchmark::State& state, GemmShape s) {
  cpu::set_num_threads(bench_threads());  // also Eigen::setNbThreads
  Generator gen(1);
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen), b = rand({s.k, s.n}, DType::f32, Device::cpu(), &gen);
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  for (auto _ : state) {
    Tensor c = empty({s.m, s.n}, DType::f32);
    Eigen::Map<RowMajor>(c.data<float>(), s.m, s.n).noalias() =
        Eigen::Map<const RowMajor>(a.data<float>(), s.m, s.k) * Eigen::Map<const RowMajor>(b.data<float>(), s.k, s.n);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, s);
}

#ifdef EMBER_BENCH_HAVE_BLAS
void bench_openblas(benchmark::State& state, GemmShape s) {
  openblas_set_num_threads(bench_threads());
  Generator gen(1);
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen), b = rand({s.k, s.n}, DType::f32, Device::cpu(), &gen);
  for (auto _ : state) {
    Tensor c = empty({s.m, s.n}, DType::f32);  // allocated per call, as ember's result is
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(s.m), static_cast<int>(s.n),
                static_cast<int>(s.k), 1.0f, a.data<float>(), static_cast<int>(s.k), b.data<float>(),
                static_cast<int>(s.n), 0.0f, c.data<float>(), static_cast<int>(s.n));
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, s);
}
#endif

// CUDA: `kernel` 1..3 with the native backend, 0 for cuBLAS. Each iteration synchronizes.
void bench_cuda(benchmark::State& state, GemmShape s, int kernel, DType dtype) {
  const MatmulBackend saved_backend = matmul_backend();
  const int saved_kernel = matmul_kernel();
  set_matmul_backend(kernel == 0 ? MatmulBackend::cublas : MatmulBackend::native);
  if (kernel > 0) set_matmul_kernel(kernel);
  Generator gen(1);
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen).to(Device::cuda(0), dtype);
  Tensor b = rand({s.k, s.n}, DType::f32, Device::cpu(), &gen).to(Device::cuda(0), dtype);
  matmul(a, b);  // warm-up: cuBLAS handle, allocator
  cuda::synchronize();
  for (auto _ : state) {
    Tensor c = matmul(a, b);
    cuda::synchronize();
  }
  set_flops(state, s);
  set_matmul_backend(saved_backend);
  set_matmul_kernel(saved_kernel);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("threads", std::to_string(bench_threads()));
#ifdef EMBER_BENCH_HAVE_BLAS
  // OpenBLAS picks its kernels at run time (OPENBLAS_CORETYPE overrides): say which it took.
  benchmark::AddCustomContext("openblas", std::string(openblas_get_config()) + ", core " + openblas_get_corename());
#endif
  // One library at a time, not shape by shape: after a call, OpenBLAS's worker threads keep
  // spinning for a while (and OpenMP's briefly), which would slow whatever runs next on a
  // 2-core machine. Leave --benchmark_enable_random_interleaving off for the same reason.
  for (const GemmShape& s : kShapes)
    benchmark::RegisterBenchmark(("cpu/ember/" + s.name).c_str(), bench_ember_cpu, s)->UseRealTime()->Unit(benchmark::kMillisecond);
#ifdef EMBER_BENCH_HAVE_BLAS
  for (const GemmShape& s : kShapes)
    benchmark::RegisterBenchmark(("cpu/openblas/" + s.name).c_str(), bench_openblas, s)->UseRealTime()->Unit(benchmark::kMillisecond);
#endif
  for (const GemmShape& s : kShapes)
    benchmark::RegisterBenchmark(("cpu/eigen_threads/" + s.name).c_str(), bench_eigen_threads, s)
        ->UseRealTime()->Unit(benchmark::kMillisecond);
  if (cuda::is_available()) {
    for (const GemmShape& s : kShapes) {
      for (int kernel = 1; kernel <= kMatmulKernelCount; ++kernel)
        benchmark::RegisterBenchmark(("cuda/f32/v" + std::to_string(kernel) + "/" + s.name).c_str(), bench_cuda, s,
                                     kernel, DType::f32)->UseRealTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("cuda/f32/cublas/" + s.name).c_str(), bench_cuda, s, 0, DType::f32)
          ->UseRealTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("cuda/bf16/v3/" + s.name).c_str(), bench_cuda, s, 3, DType::bf16)
          ->UseRealTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("cuda/bf16/cublas/" + s.name).c_str(), bench_cuda, s, 0, DType::bf16)
          ->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
