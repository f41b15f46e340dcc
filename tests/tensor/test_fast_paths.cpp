// The fast paths and the paths only large or unusual inputs reach (issue 9, items 4 and 5):
// EMBER_MATMUL / EMBER_CONV / EMBER_TF32 parsing, cuDNN loaded at run time, the multi-tensor
// AdamW / SGD against the per-tensor ones, bf16 layer norm / batch norm / optimizers against a
// float64 reference, matmul batches over grid z's limit and over (B, H) batches whose strides do
// not chain, layer norm's backward over several row chunks, Welford over several elements per
// thread, grid-stride loops past their first pass, and an elementwise kernel past 2^31
// elements. The CPU tests run everywhere; the CUDA ones skip visibly without a GPU (and fail
// under EMBER_EXPECT_CUDA=1).
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "optim/adam.h"
#include "optim/sgd.h"
#include "tensor/cuda/cudnn_library.h"
#include "tensor/env.h"
#include "tests/support/test_util.h"

namespace ember {
namespace {

using testing::all_close;
using testing::error_of;
using testing::random_tensor;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- settings ----------------------------------------------------------------------------

TEST(FastPathSettings, EnvChoicesParseOneWay) {
  const std::vector<std::string> words{"auto", "native", "cublas"};
  EXPECT_EQ(parse_env_choice("EMBER_X", nullptr, words, 0), 0);
  EXPECT_EQ(parse_env_choice("EMBER_X", "", words, 2), 2);
  EXPECT_EQ(parse_env_choice("EMBER_X", "cublas", words, 0), 2);
  EXPECT_EQ(parse_env_choice("EMBER_X", "native", words, 0), 1);
  const std::string e = error_of([&] { parse_env_choice("EMBER_X", "CUBLAS", words, 0); });
  EXPECT_TRUE(contains(e, "EMBER_X='CUBLAS'") && contains(e, "auto, native or cublas")) << e;
}

TEST(FastPathSettings, BackendNamesRoundTrip) {
  for (MatmulBackend b : {MatmulBackend::automatic, MatmulBackend::native, MatmulBackend::cublas})
    EXPECT_EQ(parse_matmul_backend(matmul_backend_name(b)), b);
  for (ConvBackend b : {ConvBackend::automatic, ConvBackend::native, ConvBackend::cudnn})
    EXPECT_EQ(parse_conv_backend(conv_backend_name(b)), b);
  EXPECT_EQ(parse_matmul_backend(nullptr), MatmulBackend::automatic);
  EXPECT_EQ(parse_conv_backend(""), ConvBackend::automatic);
  EXPECT_TRUE(contains(error_of([] { parse_matmul_backend("fast"); }), "EMBER_MATMUL='fast'"));
  EXPECT_TRUE(contains(error_of([] { parse_conv_backend("cudnn8"); }), "EMBER_CONV='cudnn8'"));
  // The test programs run with TF32 off (tests/support/test_util.cpp).
  EXPECT_FALSE(allow_tf32());
}

// ---- cuDNN at run time (no GPU needed: dlopen and dlsym only) ----------------------------

TEST(CudnnLibrary, LoadsAtRunTimeOrSaysWhy) {
  const cuda::CudnnLibraryInfo& info = cuda::cudnn_library();
  EXPECT_EQ(&info, &cuda::cudnn_library());  // loaded once
  if (!info.compiled) {
    EXPECT_FALSE(info.loaded);
    EXPECT_TRUE(contains(info.error, "without cuDNN support")) << info.error;
    GTEST_SKIP() << "built without cudnn.h: " << info.error;
  }
  const std::vector<std::string> names = cuda::cudnn_library_candidates();
  ASSERT_FALSE(names.empty());
  const size_t major = info.header_version >= 10000 ? info.header_version / 10000 : info.header_version / 1000;
  const char* env = std::getenv("EMBER_CUDNN_LIBRARY");
  EXPECT_EQ(names[env && *env ? 1 : 0], "libcudnn.so." + std::to_string(major));
  if (!info.loaded) {
    for (const std::string& n : names) EXPECT_TRUE(contains(info.error, n)) << info.error;
    std::printf("(cuDNN not loadable here, so EMBER_CONV=auto falls back to native: %s)\n", info.error.c_str());
    return;
  }
  EXPECT_TRUE(info.error.empty());
  EXPECT_EQ(info.version >= 10000 ? info.version / 10000 : info.version / 1000, major);
  std::printf("(cuDNN %zu loaded from %s; built with cudnn.h %zu)\n", info.version, info.path.c_str(),
              info.header_version);
}

// ---- multi-tensor optimizers on the CPU ---------------------------------------------------

// n tensors of odd sizes (1 to ~3000 elements, one of 70001), values in [-1, 1).
std::vector<Tensor> odd_tensors(size_t n, DType dtype, uint64_t seed, Device device = Device::cpu()) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < n; ++i) {
    const int64_t size = i == 3 ? 70001 : 1 + static_cast<int64_t>((i * 7919 + 13) % 2999);
    out.push_back(random_tensor({size}, dtype, -1, 1, seed + i, device));
  }
  return out;
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.clone());
  return out;
}

std::vector<AdamWStep> adamw_steps(size_t n) {
  std::vector<AdamWStep> steps;
  for (size_t i = 0; i < n; ++i) {
    AdamWStep s;
    s.lr = 1e-3 * (1 + i % 3);
    s.weight_decay = i % 2 ? 0.05 : 0.0;
    s.step = 1 + static_cast<int64_t>(i % 5);  // parameters first updated at different steps
    s.decoupled = i % 4 != 1;
    steps.push_back(s);
  }
  return steps;
}

std::vector<SGDStep> sgd_steps(size_t n) {
  std::vector<SGDStep> steps;
  for (size_t i = 0; i < n; ++i) {
    SGDStep s;
    s.lr = 0.01 * (1 + i % 3);
    s.momentum = i % 5 == 0 ? 0.0 : 0.9;
    s.weight_decay = i % 2 ? 1e-4 : 0.0;
    s.nesterov = s.momentum != 0 && i % 3 == 0;
    s.dampening = s.nesterov ? 0.0 : 0.1 * (i % 2);
    s.first_step = i % 4 == 0;
    steps.push_back(s);
  }
  return steps;
}

// Runs the multi-tensor update and the per-tensor one on copies; expects equal results
// (bitwise on the CPU and on CUDA: the same arithmetic in the same order).
void expect_adamw_multi_equals_per_tensor(size_t n, DType dtype, Device device) {
  std::vector<Tensor> p = odd_tensors(n, dtype, 100, device), g = odd_tensors(n, dtype, 5000, device);
  const DType st = optimizer_state_dtype(dtype);
  std::vector<Tensor> m = odd_tensors(n, st, 9000, device), v = odd_tensors(n, st, 13000, device);
  for (Tensor& t : v) t = mul(t, t);  // v >= 0
  std::vector<AdamWStep> steps = adamw_steps(n);
  std::vector<Tensor> p1 = clones(p), m1 = clones(m), v1 = clones(v);
  for (size_t i = 0; i < n; ++i) adamw_update(p1[i], g[i], m1[i], v1[i], steps[i]);
  adamw_update_multi(p, g, m, v, steps);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(all_close(p[i].cpu(), p1[i].cpu(), 0, 0)) << "param " << i;
    ASSERT_TRUE(all_close(m[i].cpu(), m1[i].cpu(), 0, 0)) << "exp_avg " << i;
    ASSERT_TRUE(all_close(v[i].cpu(), v1[i].cpu(), 0, 0)) << "exp_avg_sq " << i;
  }
}

void expect_sgd_multi_equals_per_tensor(size_t n, DType dtype, Device device) {
  std::vector<Tensor> p = odd_tensors(n, dtype, 200, device), g = odd_tensors(n, dtype, 6000, device);
  std::vector<Tensor> b = odd_tensors(n, optimizer_state_dtype(dtype), 11000, device);
  std::vector<SGDStep> steps = sgd_steps(n);
  for (size_t i = 0; i < n; ++i)
    if (steps[i].momentum == 0) b[i] = Tensor();
  std::vector<Tensor> p1 = clones(p), b1;
  for (const Tensor& t : b) b1.push_back(t.defined() ? t.clone() : Tensor());
  for (size_t i = 0; i < n; ++i) sgd_update(p1[i], g[i], b1[i], steps[i]);
  sgd_update_multi(p, g, b, steps);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(all_close(p[i].cpu(), p1[i].cpu(), 0, 0)) << "param " << i;
    if (b[i].defined()) {
      ASSERT_TRUE(all_close(b[i].cpu(), b1[i].cpu(), 0, 0)) << "momentum " << i;
    }
  }
}

TEST(MultiTensorOptim, CpuEqualsPerTensor) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    expect_adamw_multi_equals_per_tensor(40, dt, Device::cpu());
    expect_sgd_multi_equals_per_tensor(40, dt, Device::cpu());
  }
}

TEST(MultiTensorOptim, RejectsBadLists) {
  Tensor p = random_tensor({3}, DType::f32), g = random_tensor({3}, DType::f32);
  Tensor m = zeros({3}), v = zeros({3});
  std::string e = error_of([&] { adamw_update_multi({p, p}, {g}, {m}, {v}, {AdamWStep{}}); });
  EXPECT_TRUE(contains(e, "adamw_update_multi") && contains(e, "2 params but 1 grads")) << e;
  e = error_of([&] { sgd_update_multi({p}, {g}, {}, {SGDStep{}}); });
  EXPECT_TRUE(contains(e, "sgd_update_multi") && contains(e, "0 momentum_buffers")) << e;
  // the state of a bf16 parameter is f32; bf16 parameters are updated on CUDA only
  Tensor pb = p.to(DType::bf16), gb = g.to(DType::bf16);
  e = error_of([&] { adamw_update(pb, gb, m, v, AdamWStep{}); });
  EXPECT_TRUE(contains(e, "CUDA only")) << e;
  e = error_of([&] { adamw_update(p, g, m.to(DType::bf16), v, AdamWStep{}); });
  EXPECT_TRUE(contains(e, "exp_avg has dtype bf16, expected f32")) << e;
  EXPECT_EQ(optimizer_state_dtype(DType::bf16), DType::f32);
  EXPECT_EQ(optimizer_state_dtype(DType::f16), DType::f32);
  EXPECT_EQ(optimizer_state_dtype(DType::f64), DType::f64);
}

// The optimizers' two paths give equal parameters over several steps, with groups of
// different lr / weight decay and a parameter that has no gradient on some steps.
template <class Opt, class Options>
void expect_optimizer_paths_equal(Options options, Device device) {
  auto make_params = [&] {
    std::vector<Variable> ps;
    for (int64_t i = 0; i < 7; ++i) ps.emplace_back(random_tensor({3 + 5 * i, 2}, DType::f32, -1, 1, 40 + i, device), true);
    return ps;
  };
  std::vector<Variable> a = make_params(), b = make_params();
  auto groups_of = [](const std::vector<Variable>& ps) {
    return std::vector<nn::ParamGroup>{nn::ParamGroup{"decay", {ps[0], ps[1], ps[2], ps[3]}, {}, 0.05, -1.0, 1.0},
                                   nn::ParamGroup{"no_decay", {ps[4], ps[5], ps[6]}, {}, 0.0, -1.0, 0.5}};
  };
  Options per_tensor = options;
  per_tensor.multi_tensor = false;
  Opt multi(groups_of(a), options), single(groups_of(b), per_tensor);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (i == 5 && step % 2 == 0) {  // no gradient: skipped, its state untouched
        a[i].zero_grad();
        b[i].zero_grad();
        continue;
      }
      Tensor g = random_tensor(a[i].shape(), DType::f32, -1, 1, 700 + 10 * step + i, device);
      a[i].set_grad(g.clone());
      b[i].set_grad(g.clone());
    }
    multi.step();
    single.step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(all_close(a[i].data().cpu(), b[i].data().cpu(), 0, 0)) << "param " << i;
    EXPECT_EQ(multi.step_count(static_cast<int64_t>(i)), single.step_count(static_cast<int64_t>(i)));
  }
  EXPECT_EQ(multi.step_count(5), 2);
}

TEST(MultiTensorOptim, OptimizersTakeEitherPathOnCpu) {
  expect_optimizer_paths_equal<optim::AdamW>(optim::AdamOptions{.lr = 1e-2}, Device::cpu());
  expect_optimizer_paths_equal<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true},
                                           Device::cpu());
}

TEST(LayerNormChunks, CountsRowsInChunksOf64) {
  EXPECT_EQ(layer_norm_backward_chunks(0), 1);
  EXPECT_EQ(layer_norm_backward_chunks(64), 1);
  EXPECT_EQ(layer_norm_backward_chunks(65), 2);
  EXPECT_EQ(layer_norm_backward_chunks(1000), 16);
  EXPECT_EQ(layer_norm_backward_chunks(1 << 20), 256);
}

TEST(FastPaths, Bf16NormsRunOnCudaOnly) {
  Tensor x = random_tensor({4, 6}, DType::bf16);
  EXPECT_TRUE(contains(error_of([&] { layer_norm(x, Tensor(), Tensor()); }), "bf16 and f16 run on CUDA"));
  EXPECT_TRUE(contains(error_of([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); }),
                       "bf16 and f16 run on CUDA"));
}

// ---- CUDA -----------------------------------------------------------------------------------

// Restores the process-wide settings when a test ends.
struct SettingsGuard {
  MatmulBackend matmul = matmul_backend();
  ConvBackend conv = conv_backend();
  bool tf32 = allow_tf32();
  ~SettingsGuard() {
    set_matmul_backend(matmul);
    set_conv_backend(conv);
    set_allow_tf32(tf32);
  }
};

// Bounds for one product of length k with inputs in [-1, 1]: per dtype, and TF32's for f32
// when the mode allows it (inputs rounded to 10 mantissa bits: ~2^-11 relative per input).
double gemm_tol(DType dt, bool tf32) {
  if (dt == DType::f64) return 1e-10;
  if (dt == DType::f32) return tf32 ? 1e-2 : 1e-4;
  return 3e-2;
}

struct MatmulMode {
  MatmulBackend backend;
  bool tf32;
  const char* name;
};
const MatmulMode kMatmulModes[] = {{MatmulBackend::native, false, "native"},
                                   {MatmulBackend::cublas, false, "cublas"},
                                   {MatmulBackend::automatic, true, "auto (TF32)"},
                                   {MatmulBackend::automatic, false, "auto, EMBER_TF32=0"}};

// a · b on CUDA in dt, against the CPU's f64 product of the dt-rounded values.
void expect_matmul_matches(const Tensor& a_dev, const Tensor& b_dev, DType dt, bool tf32, const std::string& what) {
  Tensor expected = matmul(a_dev.cpu().to(DType::f64), b_dev.cpu().to(DType::f64));
  Tensor got = matmul(a_dev, b_dev);
  ASSERT_EQ(got.dtype(), dt) << what;
  EXPECT_TRUE(all_close(got.cpu().to(DType::f64), expected, gemm_tol(dt, tf32), gemm_tol(dt, tf32))) << what;
}

TEST(MatmulModesCuda, EveryModeMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  SettingsGuard restore;
  const Device dev = Device::cuda(0);
  for (const MatmulMode& mode : kMatmulModes) {
    set_matmul_backend(mode.backend);
    set_allow_tf32(mode.tf32);
    for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      const std::string what = std::string(mode.name) + " " + dtype_name(dt);
      Tensor a = random_tensor({67, 45}, dt, -1, 1, 1, dev), b = random_tensor({45, 33}, dt, -1, 1, 2, dev);
      expect_matmul_matches(a, b, dt, mode.tf32, what + " plain");
      expect_matmul_matches(a.t().contiguous().t(), b, dt, mode.tf32, what + " column-major a");
      // attention's layout: q, k (B, H, N, d) sliced out of qkv (B, N, 3, H, d); the (B, H) batch
      // strides do not chain, so matmul runs it as an (outer, inner) run: one launch / one call.
      Tensor qkv = random_tensor({3, 9, 3, 4, 16}, dt, -1, 1, 3, dev).permute({2, 0, 3, 1, 4});  // (3, B, H, N, d)
      Tensor q = qkv.select(0, 0), k = qkv.select(0, 1);
      expect_matmul_matches(q, k.transpose(-2, -1), dt, mode.tf32, what + " (B, H) batch, q·kᵀ");
      Tensor s = random_tensor({3, 4, 9, 9}, dt, -1, 1, 4, dev);
      expect_matmul_matches(s, qkv.select(0, 2), dt, mode.tf32, what + " (B, H) batch, P·v");
      // three batch dims that do not chain: groups enumerated, each one run
      Tensor a5 = random_tensor({2, 3, 4, 5, 6}, dt, -1, 1, 5, dev).permute({1, 0, 2, 3, 4});
      expect_matmul_matches(a5, random_tensor({6, 7}, dt, -1, 1, 6, dev), dt, mode.tf32, what + " 3 batch dims");
    }
  }
}

// More products than grid z holds (65535): the native kernels take them in launches of at most
// 65535 (z0), cuBLAS in calls of at most 65535; an (outer, inner) run over the limit too.
TEST(MatmulModesCuda, BatchesBeyondGridZ) {
  EMBER_REQUIRE_CUDA();
  SettingsGuard restore;
  const Device dev = Device::cuda(0);
  for (const MatmulMode& mode : kMatmulModes) {
    set_matmul_backend(mode.backend);
    set_allow_tf32(mode.tf32);
    const std::string what = mode.name;
    expect_matmul_matches(random_tensor({70001, 3, 5}, DType::f32, -1, 1, 7, dev),
                          random_tensor({70001, 5, 2}, DType::f32, -1, 1, 8, dev), DType::f32, mode.tf32,
                          what + " 70001 products");
    // (2, 40000) batch, strides not chaining: one run of 80000 products
    Tensor a = random_tensor({40000, 2, 4, 3}, DType::f32, -1, 1, 9, dev).permute({1, 0, 2, 3});
    expect_matmul_matches(a, random_tensor({2, 40000, 3, 2}, DType::f32, -1, 1, 10, dev), DType::f32, mode.tf32,
                          what + " (2, 40000) run");
  }
}

// Attention's GEMMs through every matmul mode, forward and backward, against the CPU.
TEST(MatmulModesCuda, AttentionInEveryMode) {
  EMBER_REQUIRE_CUDA();
  SettingsGuard restore;
  const Device dev = Device::cuda(0);
  Tensor qkv = random_tensor({2, 17, 3, 4, 8}, DType::f32, -1, 1, 11).permute({2, 0, 3, 1, 4});  // (3, B, H, N, d)
  Variable q(qkv.select(0, 0).contiguous(), true), k(qkv.select(0, 1).contiguous(), true), v(qkv.select(0, 2).contiguous(), true);
  Tensor g = random_tensor({2, 4, 17, 8}, DType::f32, -1, 1, 12);
  Variable out = scaled_dot_product_attention(q, k, v);
  out.backward(g);
  for (const MatmulMode& mode : kMatmulModes) {
    set_matmul_backend(mode.backend);
    set_allow_tf32(mode.tf32);
    Tensor qkv_d = qkv.to(dev);  // the (B, H) slices, as a ViT block has them
    Variable qd(qkv_d.select(0, 0), true), kd(qkv_d.select(0, 1), true), vd(qkv_d.select(0, 2), true);
    Variable od = scaled_dot_product_attention(qd, kd, vd);
    od.backward(g.to(dev));
    const double tol = mode.tf32 ? 2e-2 : 1e-4;
    EXPECT_TRUE(all_close(od.data().cpu(), out.data(), tol, tol)) << mode.name;
    EXPECT_TRUE(all_close(qd.grad().cpu(), q.grad(), tol, tol)) << mode.name;
    EXPECT_TRUE(all_close(kd.grad().cpu(), k.grad(), tol, tol)) << mode.name;
    EXPECT_TRUE(all_close(vd.grad().cpu(), v.grad(), tol, tol)) << mode.name;
  }
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
};

std::vector<ConvCase> conv_cases() {
  Conv2dParams tf_same = Conv2dParams::square(2, 0);
  tf_same.extra_pad_h = tf_same.extra_pad_w = 1;  // cuDNN cannot express it: native runs
  return {{"dense 3x3", {2, 5, 9, 8}, {7, 5, 3, 3}, Conv2dParams::square(1, 1)},
          {"stride 2, dilation 2", {2, 4, 11, 10}, {6, 4, 3, 3}, Conv2dParams::square(2, 2, 2)},
          {"grouped", {2, 6, 7, 7}, {9, 2, 3, 3}, Conv2dParams::square(1, 1, 1, 3)},
          {"depthwise", {3, 8, 10, 9}, {8, 1, 5, 5}, Conv2dParams::square(2, 2, 1, 8)},
          {"depthwise x2", {2, 4, 8, 8}, {8, 1, 3, 3}, Conv2dParams::square(1, 1, 1, 4)},
          {"1x1", {2, 16, 6, 5}, {12, 16, 1, 1}, Conv2dParams::square()},
          {"extra bottom/right padding", {2, 3, 8, 8}, {4, 3, 3, 3}, tf_same}};
}

struct ConvMode {
  ConvBackend backend;
  bool tf32;
  const char* name;
};

TEST(ConvModesCuda, EveryModeMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  SettingsGuard restore;
  const Device dev = Device::cuda(0);
  std::vector<ConvMode> modes{{ConvBackend::native, false, "native"},
                              {ConvBackend::automatic, true, "auto (TF32)"},
                              {ConvBackend::automatic, false, "auto, EMBER_TF32=0"}};
  if (cuda::cudnn_library().loaded) modes.push_back({ConvBackend::cudnn, false, "cudnn"});
  else std::printf("(cuDNN not loadable: EMBER_CONV=cudnn not tested; %s)\n", cuda::cudnn_library().error.c_str());
  for (const ConvMode& mode : modes) {
    set_conv_backend(mode.backend);
    set_allow_tf32(mode.tf32);
    for (const ConvCase& c : conv_cases()) {
      for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
        const std::string what = std::string(mode.name) + " " + c.name + " " + dtype_name(dt);
        Tensor x = random_tensor(c.x, dt, -1, 1, 21), w = random_tensor(c.w, dt, -1, 1, 22);
        Tensor b = random_tensor({c.w[0]}, dt, -1, 1, 23);
        Tensor x64 = x.to(DType::f64), w64 = w.to(DType::f64), b64 = b.to(DType::f64);
        Tensor ref = conv2d(x64, w64, b64, c.p);
        Tensor g = random_tensor(ref.shape(), dt, -1, 1, 24), g64 = g.to(DType::f64);
        // bounds: k = Cg·kh·kw products of values in [-1, 1]
        const double tol = dt == DType::f64 ? 1e-10 : dt == DType::bf16 ? 5e-2 : mode.tf32 ? 2e-2 : 1e-4;
        EXPECT_TRUE(all_close(conv2d(x.to(dev), w.to(dev), b.to(dev), c.p).cpu().to(DType::f64), ref, tol, tol)) << what;
        EXPECT_TRUE(all_close(conv2d_backward_input(g.to(dev), w.to(dev), c.x, c.p).cpu().to(DType::f64),
                              conv2d_backward_input(g64, w64, c.x, c.p), tol, tol)) << what;
        EXPECT_TRUE(all_close(conv2d_backward_weight(g.to(dev), x.to(dev), c.w, c.p).cpu().to(DType::f64),
                              conv2d_backward_weight(g64, x64, c.w, c.p), tol, 4 * tol)) << what;
      }
    }
  }
}

TEST(ConvModesCuda, CudnnModeWithoutTheLibraryIsAnError) {
  EMBER_REQUIRE_CUDA();
  if (cuda::cudnn_library().loaded) GTEST_SKIP() << "cuDNN is loadable here, so EMBER_CONV=cudnn runs (tested above)";
  SettingsGuard restore;
  set_conv_backend(ConvBackend::cudnn);
  const Device dev = Device::cuda(0);
  const std::string e = error_of([&] { conv2d(zeros({1, 2, 4, 4}, DType::f32, dev), zeros({2, 2, 3, 3}, DType::f32, dev), Tensor()); });
  EXPECT_TRUE(contains(e, "EMBER_CONV=cudnn") && contains(e, "libcudnn")) << e;
}

// bf16 layer norm over several row chunks (1000 rows: 16 chunks of dγ, dβ partial sums) and
// rows longer than a warp (each lane several elements), against f64 on the same bf16 values.
TEST(Bf16Cuda, LayerNormMatchesF64Reference) {
  EMBER_REQUIRE_CUDA();
  const Device dev = Device::cuda(0);
  for (DType dt : {DType::bf16, DType::f16, DType::f32}) {
    for (int64_t D : {7, 200}) {
      const int64_t rows = 1000;
      ASSERT_GT(layer_norm_backward_chunks(rows), 1);
      Tensor x = random_tensor({rows, D}, dt, -1, 2, 31), g = random_tensor({rows, D}, dt, -1, 1, 32);
      Tensor w = random_tensor({D}, DType::f32, 0.5, 1.5, 33), b = random_tensor({D}, DType::f32, -1, 1, 34);
      LayerNormResult ref = layer_norm(x.to(DType::f64), w.to(DType::f64), b.to(DType::f64));
      LayerNormGrads ref_g = layer_norm_backward(g.to(DType::f64), x.to(DType::f64), w.to(DType::f64), ref.mean, ref.rstd);
      LayerNormResult got = layer_norm(x.to(dev), w.to(dev), b.to(dev));
      ASSERT_EQ(got.out.dtype(), dt);
      ASSERT_EQ(got.mean.dtype(), DType::f32);
      LayerNormGrads got_g = layer_norm_backward(g.to(dev), x.to(dev), w.to(dev), got.mean, got.rstd);
      const double tol = dt == DType::f32 ? 1e-4 : dt == DType::f16 ? 5e-3 : 2e-2;  // one rounding of the result
      const std::string what = std::string(dtype_name(dt)) + " D " + std::to_string(D);
      EXPECT_TRUE(all_close(got.out.cpu().to(DType::f64), ref.out, tol, tol)) << what;
      EXPECT_TRUE(all_close(got.rstd.cpu().to(DType::f64), ref.rstd, 1e-4, 1e-5)) << what;
      EXPECT_TRUE(all_close(got_g.dx.cpu().to(DType::f64), ref_g.dx, tol, tol)) << what;
      // sums over 1000 rows of f32 products of exactly the values the reference has
      EXPECT_TRUE(all_close(got_g.dweight.cpu().to(DType::f64), ref_g.dweight, 1e-3, 1e-3)) << what;
      EXPECT_TRUE(all_close(got_g.dbias.cpu().to(DType::f64), ref_g.dbias, 1e-3, 1e-3)) << what;
    }
  }
}

// bf16 batch norm with M = N·L = 2·1500 values per channel: 512 threads per channel's block, so
// each thread folds several elements into its Welford state before the merge; and the
// elementwise kernels over the whole tensor.
TEST(Bf16Cuda, BatchNormMatchesF64Reference) {
  EMBER_REQUIRE_CUDA();
  const Device dev = Device::cuda(0);
  for (DType dt : {DType::bf16, DType::f16, DType::f32}) {
    for (bool training : {true, false}) {
      const Shape shape{2, 5, 30, 50};
      Tensor x = random_tensor(shape, dt, -1, 3, 41), g = random_tensor(shape, dt, -1, 1, 42);
      Tensor w = random_tensor({5}, DType::f32, 0.5, 1.5, 43), b = random_tensor({5}, DType::f32, -1, 1, 44);
      Tensor rm = random_tensor({5}, DType::f32, -0.2, 0.2, 45), rv = random_tensor({5}, DType::f32, 0.5, 1.5, 46);
      Tensor rm64 = rm.to(DType::f64), rv64 = rv.to(DType::f64), rm_d = rm.to(dev), rv_d = rv.to(dev);
      const BatchNormClamp relu6{0.0, 6.0};
      BatchNormResult ref = batch_norm(x.to(DType::f64), w.to(DType::f64), b.to(DType::f64), rm64, rv64, training, 0.1,
                                       1e-5, relu6);
      BatchNormGrads ref_g = batch_norm_backward(g.to(DType::f64), x.to(DType::f64), w.to(DType::f64), ref.save_mean,
                                                 ref.save_invstd, training, b.to(DType::f64), relu6);
      BatchNormResult got = batch_norm(x.to(dev), w.to(dev), b.to(dev), rm_d, rv_d, training, 0.1, 1e-5, relu6);
      ASSERT_EQ(got.out.dtype(), dt);
      ASSERT_EQ(got.save_mean.dtype(), DType::f32);
      BatchNormGrads got_g = batch_norm_backward(g.to(dev), x.to(dev), w.to(dev), got.save_mean, got.save_invstd,
                                                 training, b.to(dev), relu6);
      const double tol = dt == DType::f32 ? 1e-4 : dt == DType::f16 ? 5e-3 : 2e-2;
      const std::string what = std::string(dtype_name(dt)) + (training ? " training" : " eval");
      EXPECT_TRUE(all_close(got.out.cpu().to(DType::f64), ref.out, tol, tol)) << what;
      EXPECT_TRUE(all_close(rm_d.cpu().to(DType::f64), rm64, 1e-5, 1e-6)) << what;
      EXPECT_TRUE(all_close(rv_d.cpu().to(DType::f64), rv64, 1e-4, 1e-6)) << what;
      EXPECT_TRUE(all_close(got_g.dx.cpu().to(DType::f64), ref_g.dx, tol, tol)) << what;
      EXPECT_TRUE(all_close(got_g.dweight.cpu().to(DType::f64), ref_g.dweight, 1e-3, 1e-2)) << what;
      EXPECT_TRUE(all_close(got_g.dbias.cpu().to(DType::f64), ref_g.dbias, 1e-3, 1e-2)) << what;
    }
  }
}

// The multi-tensor kernels against the per-tensor ones on tensors of odd sizes (and one of 70001
// elements, two chunks). With 1100 tensors (f32) there are more chunks than the 1024 blocks of
// a launch, so blocks take several (the grid-stride past its first pass); the other dtypes on
// 60 tensors, to keep the test short under compute-sanitizer. Equal results, bitwise.
TEST(MultiTensorOptimCuda, EqualsPerTensorOnManyOddTensors) {
  EMBER_REQUIRE_CUDA();
  const Device dev = Device::cuda(0);
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    const size_t n = dt == DType::f32 ? 1100 : 60;
    expect_adamw_multi_equals_per_tensor(n, dt, dev);
    expect_sgd_multi_equals_per_tensor(n, dt, dev);
  }
}

// bf16 parameters, f32 state: one update against f64 arithmetic on the same bf16 values.
TEST(MultiTensorOptimCuda, Bf16UpdateMatchesF64Reference) {
  EMBER_REQUIRE_CUDA();
  const Device dev = Device::cuda(0);
  const int64_t n = 5000;
  Tensor p = random_tensor({n}, DType::bf16, -1, 1, 51), g = random_tensor({n}, DType::bf16, -1, 1, 52);
  Tensor m = random_tensor({n}, DType::f32, -0.1, 0.1, 53), v = random_tensor({n}, DType::f32, 0, 0.01, 54);
  AdamWStep s;
  s.lr = 1e-2;
  s.weight_decay = 0.1;
  s.step = 3;
  // f64 reference of the same step from the bf16 values
  Tensor p64 = p.to(DType::f64), g64 = g.to(DType::f64), m64 = m.to(DType::f64), v64 = v.to(DType::f64);
  adamw_update(p64, g64, m64, v64, s);
  Tensor pd = p.to(dev), md = m.to(dev), vd = v.to(dev);
  adamw_update_multi({pd}, {g.to(dev)}, {md}, {vd}, {s});
  EXPECT_TRUE(all_close(pd.cpu().to(DType::f64), p64, 1e-2, 1e-2));  // one bf16 rounding of the new weight
  EXPECT_TRUE(all_close(md.cpu().to(DType::f64), m64, 1e-5, 1e-7));
  EXPECT_TRUE(all_close(vd.cpu().to(DType::f64), v64, 1e-5, 1e-9));
  // SGD with momentum: bf16 param, f32 buffer
  SGDStep st;
  st.lr = 0.05;
  st.momentum = 0.9;
  st.first_step = false;
  Tensor q64 = p.to(DType::f64), b64 = m.to(DType::f64), qd = p.to(dev), bd = m.to(dev);
  sgd_update(q64, g64, b64, st);
  sgd_update_multi({qd}, {g.to(dev)}, {bd}, {st});
  EXPECT_TRUE(all_close(qd.cpu().to(DType::f64), q64, 1e-2, 1e-2));
  EXPECT_TRUE(all_close(bd.cpu().to(DType::f64), b64, 1e-5, 1e-7));
}

TEST(MultiTensorOptimCuda, OptimizersTakeEitherPath) {
  EMBER_REQUIRE_CUDA();
  expect_optimizer_paths_equal<optim::AdamW>(optim::AdamOptions{.lr = 1e-2}, Device::cuda(0));
  expect_optimizer_paths_equal<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true},
                                           Device::cuda(0));
}

// LargeCuda.*: left out of the compute-sanitizer runs of scripts/gpu-check (17 GB under memcheck).
// An elementwise kernel over 2^31 + 4099 elements (past the 32-bit index range, and past the
// grid's 65535·16 blocks of 256: the grid-stride loop takes 9 passes), output poisoned first,
// checked on slices at the start, around 2^31 and at the end. Needs ~17 GB of GPU memory
// (random_fill_kernel's grid-stride loop, 8 passes, is on the way).
TEST(LargeCuda, ElementwisePast2Pow31) {
  EMBER_REQUIRE_CUDA();
  const Device dev = Device::cuda(0);
  const int64_t n = (int64_t{1} << 31) + 4099;
  Generator gen(61);
  Tensor x = rand({n}, DType::f32, dev, &gen);
  Tensor y = empty({n}, DType::f32, dev);
  fill(y, std::nan(""));
  binary_into(BinaryOp::add, y, x, x);  // y = 2x
  for (int64_t start : {int64_t{0}, (int64_t{1} << 31) - 1000, n - 3000}) {
    Tensor xs = x.narrow(0, start, 3000).cpu(), ys = y.narrow(0, start, 3000).cpu();
    EXPECT_TRUE(all_close(ys, mul(xs, 2.0), 0, 0)) << "slice at " << start;
  }
}

}  // namespace
}  // namespace ember
