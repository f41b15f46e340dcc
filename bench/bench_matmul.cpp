// GEMM throughput, side by side in one run: ember's CPU matmul (cpu::gemm, its packed GEMM, with
// each micro-kernel this processor runs: AVX-512, AVX2) against a plain Eigen product on Eigen's
// own threads and OpenBLAS cblas_sgemm, all on the same number of threads, and on a GPU each
// hand-written CUDA kernel version and cuBLAS. f32, row-major C (m, n) = A (m, k) · B (k, n), or
// A · Bᵀ for the `_nt` shapes (B stored (n, k): a weight gradient's form). The counter GFLOP is
// shown as a rate (GFLOP=…/s): 2mnk / time; `peak` is the fraction of cpu/fma_peak/<isa>, the
// FMA throughput of these threads measured in the same run (independent multiply-adds on
// registers, no memory).
//
//   ./bench/bench_matmul --benchmark_min_time=0.5
// Threads: EMBER_BENCH_THREADS (default 2) for both ember and OpenBLAS. OpenBLAS chooses its
// kernels from the CPU at run time (printed in the context); OPENBLAS_CORETYPE=Haswell or
// SkylakeX forces its AVX2 or AVX-512 kernels where its detection falls back to an older core.
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "tensor/cpu/gemm.h"

#ifdef EMBER_BENCH_HAVE_BLAS
#include <cblas.h>
#endif

namespace {

using namespace ember;

struct GemmShape {
  std::string name;
  int64_t m, k, n;
  bool b_transposed = false;  // b stored (n, k), used as its transpose
};

// Square sizes, and the four GEMMs of a ViT-Tiny block on a batch of 64 images of 65 tokens
// (4160 rows, width 192, MLP 768).
const std::vector<GemmShape> kShapes{
    {"square_256", 256, 256, 256},       {"square_512", 512, 512, 512},
    {"square_1024", 1024, 1024, 1024},   {"square_2048", 2048, 2048, 2048},
    {"vit_qkv_4160x192x576", 4160, 192, 576}, {"vit_proj_4160x192x192", 4160, 192, 192},
    {"vit_fc1_4160x192x768", 4160, 192, 768}, {"vit_fc2_4160x768x192", 4160, 768, 192},
    // The 1×1 convolutions of tf_efficientnet_lite0 at 96×96, batch 64 (conv2d_cpu.cpp): per image
    // at 24×24 (O, C)·(C, 576), and batched over the images at 12×12 and 6×6 (O, C)·(C, N·P);
    // their weight gradients g (O, N·P) · xᵀ (N·P, C).
    {"mb_expand_144x24x576", 144, 24, 576},    {"mb_project_24x144x576", 24, 144, 576},
    {"mb_expand_240x40x9216", 240, 40, 9216},  {"mb_project_112x672x2304", 112, 672, 2304},
    {"mb_dw_240x9216x40_nt", 240, 9216, 40, true}, {"mb_dw_112x2304x672_nt", 112, 2304, 672, true},
};

// B as the shape says: (k, n), or stored (n, k) and viewed transposed.
Tensor make_b(const GemmShape& s, Generator& gen) {
  if (!s.b_transposed) return rand({s.k, s.n}, DType::f32, Device::cpu(), &gen);
  return rand({s.n, s.k}, DType::f32, Device::cpu(), &gen).t();
}

int bench_threads() {
  const char* env = std::getenv("EMBER_BENCH_THREADS");
  int n = env ? std::atoi(env) : 2;
  return n > 0 ? n : 2;
}

void set_flops(benchmark::State& state, const GemmShape& s, double peak_gflops = 0) {
  const double flops = 2.0 * static_cast<double>(s.m) * s.n * s.k;
  const double gflop = static_cast<double>(state.iterations()) * flops * 1e-9;
  state.counters["GFLOP"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  if (peak_gflops > 0) state.counters["peak"] = benchmark::Counter(gflop / peak_gflops, benchmark::Counter::kIsRate);
}

// ---- the FMA peak of these threads, per instruction set ----------------------------------
// 12 independent chains of vector FMAs per thread (enough to cover the FMA latency on two
// ports), no memory traffic: the most GEMM could reach. Returns GFLOP/s over all threads.
#if defined(__x86_64__) && defined(__GNUC__)
// One body for both instruction sets: V the register type, FMA its fused multiply-add.
#define EMBER_FMA_CHAINS(V, SET1, FMA, LANES)                       \
  V acc[12];                                                        \
  for (int i = 0; i < 12; ++i) acc[i] = SET1(1.0f);                 \
  V x = SET1(0.999f), y = SET1(1e-6f);                              \
  for (int64_t it = 0; it < iters; ++it) {                          \
    _Pragma("GCC unroll 12") for (int i = 0; i < 12; ++i) acc[i] = FMA(acc[i], x, y); \
    asm volatile("" : "+x"(x)); /* keeps the loop from being folded */ \
  }                                                                 \
  float lanes[LANES];                                               \
  float sink = 0;                                                   \
  for (int i = 0; i < 12; ++i) {                                    \
    std::memcpy(lanes, &acc[i], sizeof(lanes));                     \
    sink += lanes[0];                                               \
  }                                                                 \
  benchmark::DoNotOptimize(sink);                                   \
  return static_cast<double>(iters) * 12 * 2 * LANES;

__attribute__((target("avx512f"))) double fma_flops_avx512(int64_t iters) {
  EMBER_FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}
__attribute__((target("avx2,fma"))) double fma_flops_avx2(int64_t iters) {
  EMBER_FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}
#undef EMBER_FMA_CHAINS
#endif

double fma_flops(cpu::CpuIsa isa, int64_t iters) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (isa == cpu::CpuIsa::avx512) return fma_flops_avx512(iters);
  if (isa == cpu::CpuIsa::avx2) return fma_flops_avx2(iters);
#endif
  return 0;
}

// fma_flops on every thread at once; the FLOPs done.
double fma_all_threads(cpu::CpuIsa isa, int64_t iters) {
  double flops = 0;
#pragma omp parallel for num_threads(bench_threads()) reduction(+ : flops)
  for (int t = 0; t < bench_threads(); ++t) flops += fma_flops(isa, iters);
  return flops;
}

void bench_fma_peak(benchmark::State& state, cpu::CpuIsa isa) {
  double flops = 0;
  for (auto _ : state) flops += fma_all_threads(isa, 1 << 22);
  state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
}

// The peak used for the `peak` column: measured once per instruction set, best of 5.
double measured_peak(cpu::CpuIsa isa) {
  static std::map<cpu::CpuIsa, double> peaks;
  if (!peaks.count(isa)) {
    double best = 0;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const double flops = fma_all_threads(isa, 1 << 22);
      best = std::max(best, flops * 1e-9 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    peaks[isa] = best;
  }
  return peaks[isa];
}

// The micro-kernel alone, every operand in L1: each thread calls the tile kernel over and over
// on its own packed panels of kc = 256 (a: 256×mr, b: 256×nr, accumulating into one tile of c),
// or tile_rows on mr rows of a read in place (`rows`). The most the GEMM driver around it could
// reach; against fma_peak it shows what the kernel's loads and broadcasts cost, and against the
// shapes below what the driver (packing, blocking, cache misses) costs.
void bench_tile_l1(benchmark::State& state, cpu::CpuIsa isa, bool rows) {
  const cpu::GemmKernel kern = cpu::gemm_kernel(isa);
  constexpr int64_t kc = 256, calls = 2000;
  double flops = 0;
  for (auto _ : state) {
#pragma omp parallel for num_threads(bench_threads()) reduction(+ : flops)
    for (int t = 0; t < bench_threads(); ++t) {
      // 64-byte aligned, as the kernels' packed panels are (the AVX-512 one loads them aligned).
      auto floats = [](int64_t n, float value) {
        std::unique_ptr<float, decltype(&std::free)> p(
            static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>((n * 4 + 63) / 64 * 64))), &std::free);
        std::fill(p.get(), p.get() + n, value);
        return p;
      };
      auto a = floats(kc * kern.mr, 0.5f), b = floats(kc * kern.nr, 0.25f), c = floats(int64_t{kern.mr} * kern.nr, 0);
      for (int64_t i = 0; i < calls; ++i) {
        if (rows) kern.tile_rows(kc, a.get(), kc, b.get(), c.get(), kern.nr, true, nullptr);
        else kern.tile(kc, a.get(), b.get(), c.get(), kern.nr, true, nullptr);
      }
      benchmark::DoNotOptimize(c.get());
      flops += 2.0 * static_cast<double>(calls) * kc * kern.mr * kern.nr;
    }
  }
  state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["peak"] = benchmark::Counter(flops * 1e-9 / measured_peak(isa), benchmark::Counter::kIsRate);
}

void bench_ember_cpu(benchmark::State& state, GemmShape s, cpu::CpuIsa isa) {
  cpu::set_num_threads(bench_threads());
  cpu::set_cpu_isa(isa);
  Generator gen(1);
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen), b = make_b(s, gen);
  for (auto _ : state) {
    Tensor c = matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, s, measured_peak(isa));
}

// The three products of a fully connected layer as autograd runs them (autograd/functions/matmul.cpp),
// x (rows, in), w (out, in), g (rows, out): forward y = x·wᵀ + bias, input gradient g·w, weight
// gradient gᵀ·x. The ViT-Ti layers on a batch of 64 images of 65 tokens.
struct LinearShape {
  std::string name;
  int64_t rows, in, out;
};
const std::vector<LinearShape> kLinearShapes{{"qkv_4160x192x576", 4160, 192, 576},
                                             {"proj_4160x192x192", 4160, 192, 192},
                                             {"fc1_4160x192x768", 4160, 192, 768},
                                             {"fc2_4160x768x192", 4160, 768, 192}};
enum class LinearProduct { forward, grad_input, grad_weight };

void bench_ember_linear(benchmark::State& state, LinearShape s, LinearProduct which, cpu::CpuIsa isa) {
  cpu::set_num_threads(bench_threads());
  cpu::set_cpu_isa(isa);
  Generator gen(1);
  Tensor x = rand({s.rows, s.in}, DType::f32, Device::cpu(), &gen), w = rand({s.out, s.in}, DType::f32, Device::cpu(), &gen);
  Tensor bias = rand({s.out}, DType::f32, Device::cpu(), &gen), g = rand({s.rows, s.out}, DType::f32, Device::cpu(), &gen);
  for (auto _ : state) {
    Tensor c = which == LinearProduct::forward      ? linear(x, w, bias)
               : which == LinearProduct::grad_input ? matmul(g, w)
                                                    : matmul(g.t(), x);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, {s.name, s.rows, s.in, s.out}, measured_peak(isa));
}

// The plain Eigen product with Eigen's own threads, for comparison with ember's panels.
void bench_eigen_threads(benchmark::State& state, GemmShape s) {
  cpu::set_num_threads(bench_threads());  // also Eigen::setNbThreads
  Generator gen(1);
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen), b = rand({s.k, s.n}, DType::f32, Device::cpu(), &gen);
  // (the _nt shapes run as plain products here: Eigen packs either layout the same way)
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
  Tensor a = rand({s.m, s.k}, DType::f32, Device::cpu(), &gen), b = make_b(s, gen).contiguous();
  const auto tb = s.b_transposed ? CblasTrans : CblasNoTrans;
  const int ldb = static_cast<int>(s.b_transposed ? s.k : s.n);
  for (auto _ : state) {
    Tensor c = empty({s.m, s.n}, DType::f32);  // allocated per call, as ember's result is
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, static_cast<int>(s.m), static_cast<int>(s.n),
                static_cast<int>(s.k), 1.0f, a.data<float>(), static_cast<int>(s.k), b.data<float>(), ldb, 0.0f,
                c.data<float>(), static_cast<int>(s.n));
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, s);
}
#endif

// CUDA: `kernel` 1..3 with the native backend, 0 for cuBLAS (full f32), -1 for EMBER_MATMUL=auto
// (cuBLAS, TF32 for f32). Each iteration synchronizes.
void bench_cuda(benchmark::State& state, GemmShape s, int kernel, DType dtype) {
  const MatmulBackend saved_backend = matmul_backend();
  const int saved_kernel = matmul_kernel();
  set_matmul_backend(kernel == 0 ? MatmulBackend::cublas : kernel < 0 ? MatmulBackend::automatic : MatmulBackend::native);
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
  const auto isas = cpu::supported_isas();
  for (auto it = isas.rbegin(); it != isas.rend() && *it != cpu::CpuIsa::portable; ++it)
    benchmark::RegisterBenchmark((std::string("cpu/fma_peak/") + cpu::isa_name(*it)).c_str(), bench_fma_peak, *it)
        ->UseRealTime()->Unit(benchmark::kMillisecond);
  for (auto it = isas.rbegin(); it != isas.rend() && *it != cpu::CpuIsa::portable; ++it)
    for (bool rows : {false, true})
      benchmark::RegisterBenchmark((std::string("cpu/tile_l1/") + cpu::isa_name(*it) + (rows ? "/rows" : "/packed")).c_str(),
                                   bench_tile_l1, *it, rows)
          ->UseRealTime()->Unit(benchmark::kMillisecond);
  for (auto it = isas.rbegin(); it != isas.rend() && *it != cpu::CpuIsa::portable; ++it)
    for (const GemmShape& s : kShapes)
      benchmark::RegisterBenchmark((std::string("cpu/ember_") + cpu::isa_name(*it) + "/" + s.name).c_str(),
                                   bench_ember_cpu, s, *it)
          ->UseRealTime()->Unit(benchmark::kMillisecond);
  for (auto it = isas.rbegin(); it != isas.rend() && *it != cpu::CpuIsa::portable; ++it)
    for (const LinearShape& s : kLinearShapes)
      for (auto [which, tag] : {std::pair{LinearProduct::forward, "fwd"}, std::pair{LinearProduct::grad_input, "dx"},
                                std::pair{LinearProduct::grad_weight, "dw"}})
        benchmark::RegisterBenchmark((std::string("cpu/ember_") + cpu::isa_name(*it) + "/linear_" + tag + "/" + s.name).c_str(),
                                     bench_ember_linear, s, which, *it)
            ->UseRealTime()->Unit(benchmark::kMillisecond);
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
      benchmark::RegisterBenchmark(("cuda/f32/auto_tf32/" + s.name).c_str(), bench_cuda, s, -1, DType::f32)
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
