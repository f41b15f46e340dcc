// conv2d's cuDNN path (the choice: EMBER_CONV in tensor/ops/conv2d.h). cuDNN is loaded at run
// time (tensor/cuda/cudnn_library.h); this file calls it through the table of cudnn_api.h and
// never links it. Per shape (and device, dtype and math mode) one plan is built on first use and
// kept: descriptors for x (N, C, H, W), w (O, Cg, kh, kw), y (N, O, OH, OW), and one convolution
// descriptor per pass, each carrying the math type of the algorithm cudnnGet*Algorithm_v7
// ranked first among those that are allowed. Workspaces come from the caching allocator, one
// per call, released when the call has been enqueued (later allocations on the stream are
// ordered after it).
#include <array>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>

#include "tensor/cuda/check.h"
#include "tensor/cuda/cudnn_api.h"
#include "tensor/cuda/cudnn_library.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/binary.h"
#include "tensor/ops/conv2d_kernels.h"
#include "tensor/ops/matmul.h"

namespace ember::cuda {

namespace {

// Prints `message` to stderr the first time it is asked for, per distinct message.
void notice_once(const std::string& message) {
  static std::mutex mu;
  static std::map<std::string, bool> said;
  std::lock_guard<std::mutex> lock(mu);
  if (said[message]) return;
  said[message] = true;
  std::fprintf(stderr, "ember: %s\n", message.c_str());
}

// Why cuDNN cannot express this conv, or "" when it can.
std::string cudnn_unsupported(const Conv2dGeometry& g, DType dtype) {
  if (g.eh != 0 || g.ew != 0) return "extra bottom/right padding";
  for (int64_t n : {g.N * g.C * g.H * g.W, g.O * g.Cg * g.kh * g.kw, g.N * g.O * g.OH * g.OW})
    if (n > INT_MAX) return "a tensor of more than 2^31 - 1 elements";
  if (dtype != DType::f32 && dtype != DType::f64 && dtype != DType::bf16 && dtype != DType::f16)
    return std::string("dtype ") + dtype_name(dtype);
  return "";
}

}  // namespace

#ifdef EMBER_HAVE_CUDNN_API

namespace {

#define EMBER_CUDNN_CHECK(call)                                                                     \
  do {                                                                                              \
    cudnnStatus_t st_ = (call);                                                                     \
    if (st_ != CUDNN_STATUS_SUCCESS)                                                                \
      throw ::ember::make_error("cuDNN error in ", #call, " at ", __FILE__, ":", __LINE__, ": ", \
                                api.cudnnGetErrorString(st_));                                      \
  } while (0)

// The largest workspace an algorithm may ask for; heuristics rank some that want gigabytes.
constexpr size_t kMaxWorkspace = size_t{1} << 30;

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};  // by CudnnPass
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t workspace[3] = {0, 0, 0};
};

// device, dtype, exact (no TF32), then the geometry.
using PlanKey = std::array<int64_t, 21>;

struct Plans {
  std::mutex mu;  // held while a plan is built and while a call is enqueued (the handle is shared)
  std::map<int, cudnnHandle_t> handles;
  std::map<PlanKey, Plan> plans;
};
Plans& plans() {
  static Plans* p = new Plans;  // never destroyed: cuDNN's teardown would race the CUDA runtime's at exit
  return *p;
}

cudnnDataType_t data_type(DType t) {
  switch (t) {
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

// An algorithm's math type is allowed unless exact f32 was asked for and it uses tensor cores.
bool math_allowed(cudnnMathType_t m, bool exact) {
  return !exact || (m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

// The math type to ask for: exact f32 on the FMA units; TF32 allowed (DEFAULT) otherwise for
// f32 and f64; tensor cores for 16-bit types.
cudnnMathType_t requested_math(DType t, bool exact) {
  if (t == DType::bf16 || t == DType::f16) return CUDNN_TENSOR_OP_MATH;
  return exact ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

// The algorithms that compute in a transformed domain (FFT, Winograd): their f32 error is
// several times that of a direct or GEMM-based sum, so the exact mode leaves them out.
bool transformed(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transformed(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool transformed(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The first of cuDNN's ranked results that succeeded, fits kMaxWorkspace and is allowed (exact:
// no tensor-core math, no transformed-domain algorithm).
template <class Perf>
const Perf& pick(const Perf* perf, int count, bool exact, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace &&
        math_allowed(perf[i].mathType, exact) && !(exact && transformed(perf[i].algo)))
      return perf[i];
  throw make_error("conv2d (cuDNN): no usable ", what, " algorithm among ", count,
                   " ranked by cuDNN (set EMBER_CONV=native to use ember's kernels)");
}

Plan build_plan(const CudnnApi& api, cudnnHandle_t h, const Conv2dGeometry& g, DType dtype, bool exact) {
  Plan p;
  const cudnnDataType_t dt = data_type(dtype);
  const cudnnDataType_t compute = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  EMBER_CUDNN_CHECK(api.cudnnCreateTensorDescriptor(&p.x));
  EMBER_CUDNN_CHECK(api.cudnnCreateTensorDescriptor(&p.y));
  EMBER_CUDNN_CHECK(api.cudnnCreateFilterDescriptor(&p.w));
  EMBER_CUDNN_CHECK(api.cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, dt, int(g.N), int(g.C), int(g.H), int(g.W)));
  EMBER_CUDNN_CHECK(api.cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, dt, int(g.N), int(g.O), int(g.OH), int(g.OW)));
  EMBER_CUDNN_CHECK(api.cudnnSetFilter4dDescriptor(p.w, dt, CUDNN_TENSOR_NCHW, int(g.O), int(g.Cg), int(g.kh), int(g.kw)));
  for (auto& c : p.conv) {
    EMBER_CUDNN_CHECK(api.cudnnCreateConvolutionDescriptor(&c));
    EMBER_CUDNN_CHECK(api.cudnnSetConvolution2dDescriptor(c, int(g.ph), int(g.pw), int(g.sh), int(g.sw), int(g.dh),
                                                          int(g.dw), CUDNN_CROSS_CORRELATION, compute));
    EMBER_CUDNN_CHECK(api.cudnnSetConvolutionGroupCount(c, int(g.groups)));
    EMBER_CUDNN_CHECK(api.cudnnSetConvolutionMathType(c, requested_math(dtype, exact)));
  }
  // The math type each pass runs with: the chosen algorithm's, except FMA when exact.
  auto final_math = [&](cudnnMathType_t m) { return exact ? CUDNN_FMA_MATH : m; };
  int n = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionDescriptor_t c = p.conv[int(CudnnPass::forward)];
    EMBER_CUDNN_CHECK(api.cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, c, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    const auto& best = pick(perf, n, exact, "forward");
    p.fwd = best.algo;
    EMBER_CUDNN_CHECK(api.cudnnSetConvolutionMathType(c, final_math(best.mathType)));
    EMBER_CUDNN_CHECK(api.cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, c, p.y, p.fwd, &p.workspace[0]));
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionDescriptor_t c = p.conv[int(CudnnPass::backward_input)];
    EMBER_CUDNN_CHECK(api.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, c, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
    const auto& best = pick(perf, n, exact, "backward-data");
    p.bwd_data = best.algo;
    EMBER_CUDNN_CHECK(api.cudnnSetConvolutionMathType(c, final_math(best.mathType)));
    EMBER_CUDNN_CHECK(api.cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, c, p.x, p.bwd_data, &p.workspace[1]));
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    cudnnConvolutionDescriptor_t c = p.conv[int(CudnnPass::backward_weight)];
    EMBER_CUDNN_CHECK(api.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, c, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
    const auto& best = pick(perf, n, exact, "backward-filter");
    p.bwd_filter = best.algo;
    EMBER_CUDNN_CHECK(api.cudnnSetConvolutionMathType(c, final_math(best.mathType)));
    EMBER_CUDNN_CHECK(api.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, c, p.w, p.bwd_filter, &p.workspace[2]));
  }
  return p;
}

PlanKey key_of(int device, DType dtype, bool exact, const Conv2dGeometry& g) {
  return {device, static_cast<int64_t>(dtype), exact, g.N, g.C, g.H, g.W, g.O, g.kh, g.kw, g.groups, g.Cg, g.Og,
          g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.OH, g.OW};
}

void run(CudnnPass pass, const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& result,
         const Conv2dGeometry& g, bool exact) {
  const CudnnApi& api = cudnn_api();
  const DType dtype = result.dtype();
  const int device = current_device();
  cudaStream_t stream = stream_of(current_stream());
  Plans& ps = plans();
  std::lock_guard<std::mutex> lock(ps.mu);
  cudnnHandle_t& h = ps.handles[device];
  if (!h) EMBER_CUDNN_CHECK(api.cudnnCreate(&h));
  EMBER_CUDNN_CHECK(api.cudnnSetStream(h, stream));
  const PlanKey key = key_of(device, dtype, exact, g);
  auto it = ps.plans.find(key);
  if (it == ps.plans.end()) it = ps.plans.emplace(key, build_plan(api, h, g, dtype, exact)).first;
  const Plan& p = it->second;
  const int pi = static_cast<int>(pass);
  Tensor workspace = p.workspace[pi] ? empty({static_cast<int64_t>(p.workspace[pi])}, DType::u8, result.device()) : Tensor();
  void* ws = workspace.defined() ? workspace.data_ptr() : nullptr;
  // alpha and beta are doubles for double data, floats otherwise.
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const void* one = dtype == DType::f64 ? static_cast<const void*>(&one_d) : &one_f;
  const void* zero = dtype == DType::f64 ? static_cast<const void*>(&zero_d) : &zero_f;
  switch (pass) {
    case CudnnPass::forward:  // a = x, b = w, result = out
      EMBER_CUDNN_CHECK(api.cudnnConvolutionForward(h, one, p.x, a.data_ptr(), p.w, b.data_ptr(), p.conv[pi], p.fwd,
                                                    ws, p.workspace[pi], zero, p.y, result.data_ptr()));
      break;
    case CudnnPass::backward_input:  // a = grad_out, b = w, result = grad_x
      EMBER_CUDNN_CHECK(api.cudnnConvolutionBackwardData(h, one, p.w, b.data_ptr(), p.y, a.data_ptr(), p.conv[pi],
                                                         p.bwd_data, ws, p.workspace[pi], zero, p.x, result.data_ptr()));
      break;
    case CudnnPass::backward_weight:  // a = grad_out, b = x, result = grad_w
      EMBER_CUDNN_CHECK(api.cudnnConvolutionBackwardFilter(h, one, p.x, b.data_ptr(), p.y, a.data_ptr(), p.conv[pi],
                                                           p.bwd_filter, ws, p.workspace[pi], zero, p.w,
                                                           result.data_ptr()));
      break;
  }
  if (pass == CudnnPass::forward && bias.defined())  // out += bias (1, O, 1, 1), with ember's elementwise kernel
    binary_into(BinaryOp::add, result, result, bias.view({1, g.O, 1, 1}));
}

}  // namespace

#endif  // EMBER_HAVE_CUDNN_API

bool cudnn_conv2d(CudnnPass pass, const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& result,
                  const Conv2dGeometry& g) {
  const ConvBackend backend = conv_backend();
  if (backend == ConvBackend::native || result.numel() == 0) return false;
  const CudnnLibraryInfo& lib = cudnn_library();
  if (!lib.loaded) {
    if (backend == ConvBackend::cudnn)
      throw make_error("conv2d: EMBER_CONV=cudnn, but ", lib.error, " (use EMBER_CONV=auto or native without it)");
    notice_once("EMBER_CONV=auto: cuDNN is not available, so conv2d runs on ember's native CUDA kernels (" +
                lib.error + ")");
    return false;
  }
  const std::string why_not = cudnn_unsupported(g, result.dtype());
  if (!why_not.empty()) {
    notice_once(std::string("conv2d: cuDNN cannot run a conv with ") + why_not +
                "; such convs run on ember's native CUDA kernels");
    return false;
  }
  if (a.numel() == 0 || b.numel() == 0) return false;  // empty operands: the native launchers write the zeros
#ifdef EMBER_HAVE_CUDNN_API
  const bool tf32 = backend == ConvBackend::automatic && allow_tf32();
  run(pass, a, b, bias, result, g, result.dtype() == DType::f32 && !tf32);
  return true;
#else
  return false;  // unreachable: without cudnn.h the library never loads
#endif
}

}  // namespace ember::cuda
