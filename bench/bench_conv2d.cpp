// conv2d on EfficientNet-B0 shapes at batch 8 (and every conv of effnet_b0 with the cifar stem
// and of tf_efficientnet_lite0 at 96 and 112, batch 64, by kind: cpu/<net>/<kind>/<pass>): forward, backward-input and backward-weight, in
// GFLOP/s (2·N·O·OH·OW·Cg·kh·kw per pass), side by side:
//   cpu/...    ember's CPU kernels (im2col + Eigen GEMM for dense, direct kernels for depthwise)
//   cuda/...   ember's direct CUDA kernels (version 1)           [when a GPU is present]
//   cudnn/...  cuDNN, fp32 FMA math (no TF32), fastest algorithm from cudnnFind*  [EMBER_WITH_CUDNN]
// Run:  ./bench/bench_conv2d --benchmark_filter=cpu/
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "ember/ember.h"

#ifdef EMBER_WITH_CUDNN
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

using namespace ember;

namespace {

struct ConvShape {
  const char* name;
  int64_t N, C, H, W, O, k, stride, pad, groups;
};

// EfficientNet-B0 layers (input size given; "s2" = stride 2).
const std::vector<ConvShape> kShapes = {
    {"stem3x3_3to32_224s2", 8, 3, 224, 224, 32, 3, 2, 1, 1},
    {"dense3x3_32to64_56", 8, 32, 56, 56, 64, 3, 1, 1, 1},
    {"pw1x1_16to96_112", 8, 16, 112, 112, 96, 1, 1, 0, 1},
    {"pw1x1_24to144_56", 8, 24, 56, 56, 144, 1, 1, 0, 1},
    {"dw3x3_96_112s2", 8, 96, 112, 112, 96, 3, 2, 1, 96},
    {"dw3x3_144_56", 8, 144, 56, 56, 144, 3, 1, 1, 144},
    {"dw5x5_240_28", 8, 240, 28, 28, 240, 5, 1, 2, 240},
    {"dw5x5_672_14", 8, 672, 14, 14, 672, 5, 1, 2, 672},
    // tf_efficientnet_lite0 fine-tuned at 96×96, batch 64 (the recipe's shapes)
    {"lite96_dw3x3_32_48", 64, 32, 48, 48, 32, 3, 1, 1, 32},
    {"lite96_dw3x3_96_48s2", 64, 96, 48, 48, 96, 3, 2, 1, 96},
    {"lite96_dw3x3_144_24", 64, 144, 24, 24, 144, 3, 1, 1, 144},
    {"lite96_dw5x5_240_12", 64, 240, 12, 12, 240, 5, 1, 2, 240},
    {"lite96_dw3x3_480_6", 64, 480, 6, 6, 480, 3, 1, 1, 480},
    {"lite96_dw5x5_1152_3", 64, 1152, 3, 3, 1152, 5, 1, 2, 1152},
    {"lite96_pw1x1_96to24_24", 64, 96, 24, 24, 24, 1, 1, 0, 1},
    {"lite96_pw1x1_144to24_24", 64, 144, 24, 24, 24, 1, 1, 0, 1},
    {"lite96_pw1x1_40to240_12", 64, 40, 12, 12, 240, 1, 1, 0, 1},
    {"lite96_pw1x1_672to112_6", 64, 672, 6, 6, 112, 1, 1, 0, 1},
};

enum class Pass { forward, backward_input, backward_weight };
const char* pass_name(Pass p) {
  return p == Pass::forward ? "fwd" : p == Pass::backward_input ? "bwd_input" : "bwd_weight";
}

Conv2dParams params_of(const ConvShape& s) { return Conv2dParams::square(s.stride, s.pad, 1, s.groups); }
Shape x_shape(const ConvShape& s) { return {s.N, s.C, s.H, s.W}; }
Shape w_shape(const ConvShape& s) { return {s.O, s.C / s.groups, s.k, s.k}; }

void set_counters(benchmark::State& state, const Conv2dGeometry& g) {
  state.counters["GFLOP/s"] = benchmark::Counter(g.flops() * 1e-9 * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

// ember's kernels on `device`.
void bench_ember(benchmark::State& state, const ConvShape& s, Pass pass, Device device) {
  Conv2dParams p = params_of(s);
  Conv2dGeometry g = conv2d_geometry(x_shape(s), w_shape(s), p);
  Tensor x = randn(x_shape(s), DType::f32, device);
  Tensor w = randn(w_shape(s), DType::f32, device);
  Tensor b = randn({s.O}, DType::f32, device);
  Tensor gout = randn({g.N, g.O, g.OH, g.OW}, DType::f32, device);
  for (auto _ : state) {
    Tensor r;
    switch (pass) {
      case Pass::forward: r = conv2d(x, w, b, p); break;
      case Pass::backward_input: r = conv2d_backward_input(gout, w, x.shape(), p); break;
      case Pass::backward_weight: r = conv2d_backward_weight(gout, x, w.shape(), p); break;
    }
    if (device.is_cuda()) cuda::synchronize();
    benchmark::DoNotOptimize(r.data_ptr());
  }
  set_counters(state, g);
}

#ifdef EMBER_WITH_CUDNN
#define CUDNN_CHECK(call)                                                                        \
  do {                                                                                           \
    cudnnStatus_t st_ = (call);                                                                  \
    if (st_ != CUDNN_STATUS_SUCCESS) throw make_error("cuDNN: ", #call, ": ", cudnnGetErrorString(st_)); \
  } while (0)

// One convolution set up for cuDNN: descriptors, the fastest measured algorithm of each pass
// (cudnnFind*), and a workspace big enough for all three.
struct CudnnConv {
  cudnnHandle_t handle{};
  cudnnTensorDescriptor_t xd{}, yd{};
  cudnnFilterDescriptor_t wd{};
  cudnnConvolutionDescriptor_t cd{};
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  Tensor workspace;

  CudnnConv(const ConvShape& s, const Conv2dGeometry& g) {
    CUDNN_CHECK(cudnnCreate(&handle));
    CUDNN_CHECK(cudnnSetStream(handle, static_cast<cudaStream_t>(cuda::current_stream())));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&xd));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&yd));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&wd));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(g.N), int(g.C), int(g.H),
                                           int(g.W)));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(g.N), int(g.O), int(g.OH),
                                           int(g.OW)));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(g.O), int(g.Cg), int(g.kh),
                                           int(g.kw)));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cd, int(s.pad), int(s.pad), int(s.stride), int(s.stride), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(cd, int(s.groups)));
    CUDNN_CHECK(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));  // true fp32, like ember's kernels
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[8];
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(handle, xd, wd, cd, yd, 8, &n, fp));
    fwd = fp[0].algo;
    cudnnConvolutionBwdDataAlgoPerf_t dp[8];
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle, wd, yd, cd, xd, 8, &n, dp));
    bwd_data = dp[0].algo;
    cudnnConvolutionBwdFilterAlgoPerf_t wp[8];
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle, xd, yd, cd, wd, 8, &n, wp));
    bwd_filter = wp[0].algo;
    size_t a = 0, b = 0, c = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, xd, wd, cd, yd, fwd, &a));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, wd, yd, cd, xd, bwd_data, &b));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, xd, yd, cd, wd, bwd_filter, &c));
    workspace = empty({static_cast<int64_t>(std::max({a, b, c, size_t{1}}))}, DType::u8, Device::cuda());
  }
  ~CudnnConv() {
    cudnnDestroyConvolutionDescriptor(cd);
    cudnnDestroyFilterDescriptor(wd);
    cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroy(handle);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;
};

void bench_cudnn(benchmark::State& state, const ConvShape& s, Pass pass) {
  Conv2dParams p = params_of(s);
  Conv2dGeometry g = conv2d_geometry(x_shape(s), w_shape(s), p);
  Device dev = Device::cuda();
  Tensor x = randn(x_shape(s), DType::f32, dev), dx = empty(x_shape(s), DType::f32, dev);
  Tensor w = randn(w_shape(s), DType::f32, dev), dw = empty(w_shape(s), DType::f32, dev);
  Tensor y = empty({g.N, g.O, g.OH, g.OW}, DType::f32, dev), dy = randn(y.shape(), DType::f32, dev);
  CudnnConv conv(s, g);
  void* ws = conv.workspace.data_ptr();
  size_t ws_bytes = conv.workspace.nbytes();
  const float one = 1.f, zero = 0.f;
  for (auto _ : state) {
    switch (pass) {
      case Pass::forward:
        CUDNN_CHECK(cudnnConvolutionForward(conv.handle, &one, conv.xd, x.data_ptr(), conv.wd, w.data_ptr(), conv.cd,
                                            conv.fwd, ws, ws_bytes, &zero, conv.yd, y.data_ptr()));
        break;
      case Pass::backward_input:
        CUDNN_CHECK(cudnnConvolutionBackwardData(conv.handle, &one, conv.wd, w.data_ptr(), conv.yd, dy.data_ptr(),
                                                 conv.cd, conv.bwd_data, ws, ws_bytes, &zero, conv.xd, dx.data_ptr()));
        break;
      case Pass::backward_weight:
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(conv.handle, &one, conv.xd, x.data_ptr(), conv.yd, dy.data_ptr(),
                                                   conv.cd, conv.bwd_filter, ws, ws_bytes, &zero, conv.wd,
                                                   dw.data_ptr()));
        break;
    }
    cuda::synchronize();
  }
  set_counters(state, g);
}
#endif

// Every conv of an EfficientNet at batch 64, grouped by kind: "1x1" (expand, project, head, and
// for B0 the SE convs on (64, C, 1, 1) with bias), "depthwise", "dense" (the stem). The nets:
//   effnet_b0_cifar_b64   B0 with the stride-1 "cifar" stem at 32×32 (`ember-bench-train --model
//                         effnet_b0`)
//   lite0_<res>_b64       tf_efficientnet_lite0 at res×res (stride-2 stem, no SE; the padding
//                         symmetric here, which gives TensorFlow "SAME"'s sizes at these inputs):
//                         the fine-tuning recipe's step at 96, and 112
struct EfficientNetBench {
  const char* name;
  int64_t res, stem_stride;
  bool se;
};
const EfficientNetBench kEfficientNets[] = {
    {"effnet_b0_cifar_b64", 32, 1, true}, {"lite0_96_b64", 96, 2, false}, {"lite0_112_b64", 112, 2, false}};

std::vector<ConvShape> efficientnet_layers(const EfficientNetBench& net, const std::string& kind) {
  struct Stage {
    int64_t expand, k, stride, out, repeats;
  };
  const Stage stages[] = {{1, 3, 1, 16, 1}, {6, 3, 2, 24, 2}, {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
                          {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1}};
  const int64_t N = 64;
  std::vector<ConvShape> dense, pw, dw;
  dense.push_back({"stem", N, 3, net.res, net.res, 32, 3, net.stem_stride, 1, 1});
  int64_t c = 32, hw = (net.res + 2 - 3) / net.stem_stride + 1;
  for (const Stage& st : stages) {
    for (int64_t r = 0; r < st.repeats; ++r) {
      const int64_t stride = r == 0 ? st.stride : 1, mid = c * st.expand, se = std::max<int64_t>(1, c / 4);
      if (st.expand != 1) pw.push_back({"expand", N, c, hw, hw, mid, 1, 1, 0, 1});
      dw.push_back({"dw", N, mid, hw, hw, mid, st.k, stride, st.k / 2, mid});
      hw = (hw + 2 * (st.k / 2) - st.k) / stride + 1;
      if (net.se) {
        pw.push_back({"se_reduce", N, mid, 1, 1, se, 1, 1, 0, 1});
        pw.push_back({"se_expand", N, se, 1, 1, mid, 1, 1, 0, 1});
      }
      pw.push_back({"project", N, mid, hw, hw, st.out, 1, 1, 0, 1});
      c = st.out;
    }
  }
  pw.push_back({"head", N, c, hw, hw, 1280, 1, 1, 0, 1});
  return kind == "dense" ? dense : kind == "1x1" ? pw : dw;
}

// One iteration = the pass over every layer of the kind.
void bench_effnet_kind(benchmark::State& state, const EfficientNetBench& net, const std::string& kind, Pass pass) {
  struct Layer {
    Conv2dParams p;
    Tensor x, w, b, gout;
    double flops;
  };
  std::vector<Layer> layers;
  double flops = 0;
  for (const ConvShape& s : efficientnet_layers(net, kind)) {
    Conv2dParams p = params_of(s);
    Conv2dGeometry g = conv2d_geometry(x_shape(s), w_shape(s), p);
    layers.push_back({p, randn(x_shape(s)), randn(w_shape(s)), randn({s.O}), randn({g.N, g.O, g.OH, g.OW}),
                      g.flops()});
    flops += g.flops();
  }
  for (auto _ : state) {
    for (const Layer& l : layers) {
      Tensor r;
      switch (pass) {
        case Pass::forward: r = conv2d(l.x, l.w, l.b, l.p); break;
        case Pass::backward_input: r = conv2d_backward_input(l.gout, l.w, l.x.shape(), l.p); break;
        case Pass::backward_weight: r = conv2d_backward_weight(l.gout, l.x, l.w.shape(), l.p); break;
      }
      benchmark::DoNotOptimize(r.data_ptr());
    }
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void register_all() {
  const bool gpu = cuda::is_available();
  for (const EfficientNetBench& net : kEfficientNets)
    for (const char* kind : {"1x1", "depthwise", "dense"})
      for (Pass pass : {Pass::forward, Pass::backward_input, Pass::backward_weight})
        benchmark::RegisterBenchmark(("cpu/" + std::string(net.name) + "/" + kind + "/" + pass_name(pass)).c_str(),
                                     [net, kind = std::string(kind), pass](benchmark::State& st) {
                                       bench_effnet_kind(st, net, kind, pass);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.5);
  // The same layers one by one: cpu/<net>/layer/<index>_<name>_<C>to<O>_<k>x<k>s<stride>_<H>/<pass>.
  for (const EfficientNetBench& net : kEfficientNets) {
    std::vector<ConvShape> layers = efficientnet_layers(net, "dense");
    for (const char* kind : {"1x1", "depthwise"})
      for (const ConvShape& s : efficientnet_layers(net, kind)) layers.push_back(s);
    for (size_t i = 0; i < layers.size(); ++i) {
      const ConvShape& s = layers[i];
      const std::string id = std::to_string(i) + "_" + s.name + "_" + std::to_string(s.C) + "to" + std::to_string(s.O) +
                             "_" + std::to_string(s.k) + "x" + std::to_string(s.k) + "s" + std::to_string(s.stride) +
                             "_" + std::to_string(s.H);
      for (Pass pass : {Pass::forward, Pass::backward_input, Pass::backward_weight})
        benchmark::RegisterBenchmark(("cpu/" + std::string(net.name) + "/layer/" + id + "/" + pass_name(pass)).c_str(),
                                     [s, pass](benchmark::State& st) { bench_ember(st, s, pass, Device::cpu()); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.2);
    }
  }
  for (const ConvShape& s : kShapes) {
    for (Pass pass : {Pass::forward, Pass::backward_input, Pass::backward_weight}) {
      std::string suffix = std::string(pass_name(pass)) + "/" + s.name;
      benchmark::RegisterBenchmark(("cpu/" + suffix).c_str(),
                                   [s, pass](benchmark::State& st) { bench_ember(st, s, pass, Device::cpu()); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(0.5);
      if (gpu) {
        benchmark::RegisterBenchmark(("cuda/" + suffix).c_str(),
                                     [s, pass](benchmark::State& st) { bench_ember(st, s, pass, Device::cuda()); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
#ifdef EMBER_WITH_CUDNN
        benchmark::RegisterBenchmark(("cudnn/" + suffix).c_str(),
                                     [s, pass](benchmark::State& st) { bench_cudnn(st, s, pass); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
#endif
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!cuda::is_available()) std::fprintf(stderr, "CUDA benchmarks skipped: %s\n", cuda::unavailable_reason().c_str());
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
