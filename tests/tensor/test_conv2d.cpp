// conv2d (dense, grouped, depthwise): forward and both backward kernels against a naive
// float64 7-loop reference written here, autograd gradchecks, errors, and CUDA vs CPU.
#include <cmath>
#include <string>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

struct Case {
  std::string name;
  Shape x, w;  // (N, C, H, W), (O, C/groups, kh, kw)
  Conv2dParams p;
  bool bias = true;
};

// The reference: every sum written out, in double, straight from the definition.
struct Reference {
  int64_t N, C, H, W, O, Cg, Og, kh, kw, OH, OW;
  Conv2dParams p;

  Reference(const Shape& xs, const Shape& ws, const Conv2dParams& q)
      : N(xs[0]), C(xs[1]), H(xs[2]), W(xs[3]), O(ws[0]), Cg(ws[1]), Og(ws[0] / q.groups), kh(ws[2]), kw(ws[3]), p(q) {
    OH = (H + 2 * p.pad_h + p.extra_pad_h - p.dilation_h * (kh - 1) - 1) / p.stride_h + 1;
    OW = (W + 2 * p.pad_w + p.extra_pad_w - p.dilation_w * (kw - 1) - 1) / p.stride_w + 1;
  }
  Shape out_shape() const { return {N, O, OH, OW}; }

  // Calls f(x index, w index, out index) for every (n, o, oh, ow, c, i, j) that reads inside x.
  template <class F>
  void for_each_tap(F f) const {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow)
            for (int64_t c = 0; c < Cg; ++c)
              for (int64_t i = 0; i < kh; ++i)
                for (int64_t j = 0; j < kw; ++j) {
                  int64_t y = oh * p.stride_h - p.pad_h + i * p.dilation_h;
                  int64_t z = ow * p.stride_w - p.pad_w + j * p.dilation_w;
                  if (y < 0 || y >= H || z < 0 || z >= W) continue;
                  int64_t ci = (o / Og) * Cg + c;
                  f(((n * C + ci) * H + y) * W + z, ((o * Cg + c) * kh + i) * kw + j, ((n * O + o) * OH + oh) * OW + ow);
                }
  }

  std::vector<double> forward(const std::vector<double>& x, const std::vector<double>& w,
                              const std::vector<double>& b) const {
    std::vector<double> out(N * O * OH * OW, 0.0);
    if (!b.empty())
      for (size_t k = 0; k < out.size(); ++k) out[k] = b[(k / (OH * OW)) % O];
    for_each_tap([&](int64_t xi, int64_t wi, int64_t oi) { out[oi] += x[xi] * w[wi]; });
    return out;
  }
  std::vector<double> grad_input(const std::vector<double>& g, const std::vector<double>& w) const {
    std::vector<double> dx(N * C * H * W, 0.0);
    for_each_tap([&](int64_t xi, int64_t wi, int64_t oi) { dx[xi] += g[oi] * w[wi]; });
    return dx;
  }
  std::vector<double> grad_weight(const std::vector<double>& g, const std::vector<double>& x) const {
    std::vector<double> dw(O * Cg * kh * kw, 0.0);
    for_each_tap([&](int64_t xi, int64_t wi, int64_t oi) { dw[wi] += g[oi] * x[xi]; });
    return dw;
  }
};

Conv2dParams params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups) {
  return Conv2dParams{sh, sw, ph, pw, dh, dw, groups};
}
// TensorFlow "SAME" style: the symmetric padding plus eh rows at the bottom, ew columns at the right.
Conv2dParams extra(Conv2dParams p, int64_t eh, int64_t ew) {
  p.extra_pad_h = eh;
  p.extra_pad_w = ew;
  return p;
}

std::vector<Case> cases() {
  return {
      {"dense3x3_s1_p1", {2, 3, 7, 7}, {4, 3, 3, 3}, Conv2dParams::square(1, 1)},
      {"dense3x3_s2_p1", {2, 4, 9, 8}, {5, 4, 3, 3}, Conv2dParams::square(2, 1)},
      {"dense3x3_dilation2", {1, 3, 8, 9}, {2, 3, 3, 3}, Conv2dParams::square(1, 2, 2)},
      {"dense5x5_p2", {2, 2, 9, 9}, {3, 2, 5, 5}, Conv2dParams::square(1, 2)},
      {"dense1x1_gemm_only", {3, 5, 6, 5}, {7, 5, 1, 1}, Conv2dParams{}},
      {"dense1x1_s2", {2, 5, 7, 6}, {4, 5, 1, 1}, Conv2dParams::square(2, 0), false},
      {"dense_nonsquare", {2, 3, 7, 10}, {4, 3, 3, 2}, params(2, 1, 1, 0, 1, 2, 1)},
      {"grouped2_3x3", {2, 4, 6, 7}, {6, 2, 3, 3}, Conv2dParams::square(1, 1, 1, 2)},
      {"grouped2_1x1", {2, 6, 5, 5}, {4, 3, 1, 1}, Conv2dParams::square(1, 0, 1, 2), false},
      {"depthwise3x3_m1", {2, 6, 8, 9}, {6, 1, 3, 3}, Conv2dParams::square(1, 1, 1, 6)},
      {"depthwise3x3_m2_s2", {2, 3, 9, 8}, {6, 1, 3, 3}, Conv2dParams::square(2, 1, 1, 3)},
      {"depthwise5x5_s1", {2, 4, 9, 9}, {4, 1, 5, 5}, Conv2dParams::square(1, 2, 1, 4)},
      {"depthwise5x5_s2", {1, 4, 11, 10}, {4, 1, 5, 5}, Conv2dParams::square(2, 2, 1, 4), false},
      {"depthwise_dilation2_nonsquare", {2, 3, 10, 9}, {6, 1, 3, 2}, params(1, 2, 2, 1, 2, 2, 3)},
      {"depthwise_s1_dilation2_m2", {2, 3, 9, 10}, {6, 1, 3, 3}, params(1, 1, 2, 2, 2, 2, 3)},
      {"depthwise_s1_nopad", {1, 4, 6, 7}, {4, 1, 3, 3}, Conv2dParams::square(1, 0, 1, 4), false},
      {"depthwise_s1_1x5", {2, 2, 5, 6}, {2, 1, 1, 5}, params(1, 1, 0, 2, 1, 1, 2)},
      // Channels-last depthwise (multiplier 1, planes up to 8×8) with a partial block of
      // channels (70 = 64 + 6); beside it a plane above 8×8 (the polyphase kernels).
      {"depthwise3x3_cl_70ch_s2", {2, 70, 5, 6}, {70, 1, 3, 3}, Conv2dParams::square(2, 1, 1, 70)},
      // Channels-last at unit stride (the gather form of the input gradient): 5×5 with a partial
      // register block (37 = 2·16 + 5), dilation, extra bottom/right padding, an output larger than
      // the input.
      {"depthwise5x5_cl_37ch_6x6", {3, 37, 6, 6}, {37, 1, 5, 5}, Conv2dParams::square(1, 2, 1, 37)},
      {"depthwise3x3_cl_dilation2", {2, 20, 7, 8}, {20, 1, 3, 3}, params(1, 1, 2, 2, 2, 2, 20)},
      {"depthwise3x3_cl_extra_pad", {2, 17, 5, 5}, {17, 1, 3, 3}, extra(Conv2dParams::square(1, 0, 1, 17), 2, 2)},
      {"depthwise3x3_cl_output_larger", {2, 18, 4, 4}, {18, 1, 3, 3}, Conv2dParams::square(1, 2, 1, 18)},
      {"depthwise5x5_polyphase_33", {1, 2, 33, 34}, {2, 1, 5, 5}, Conv2dParams::square(1, 2, 1, 2)},
      // 1×1 as one GEMM over the batch (planes up to 4×4; SE convs at 1×1) and per sample above.
      {"dense1x1_se_1x1_plane", {5, 12, 1, 1}, {3, 12, 1, 1}, Conv2dParams{}},
      {"dense1x1_batched_4x4", {3, 6, 4, 4}, {5, 6, 1, 1}, Conv2dParams{}},
      {"dense1x1_per_sample_5x4", {3, 6, 5, 4}, {5, 6, 1, 1}, Conv2dParams{}},
      {"dense1x1_per_sample_17x16", {2, 3, 17, 16}, {4, 3, 1, 1}, Conv2dParams{}},
      // Extra bottom/right padding (TF "SAME" on even sizes at stride 2): every kernel family.
      {"dense3x3_s2_same", {2, 3, 8, 10}, {4, 3, 3, 3}, extra(Conv2dParams::square(2, 0), 1, 1)},
      {"dense1x1_extra_only", {2, 3, 5, 4}, {2, 3, 1, 1}, extra(Conv2dParams{}, 2, 1), false},
      {"depthwise3x3_s2_same", {2, 5, 8, 8}, {5, 1, 3, 3}, extra(Conv2dParams::square(2, 0, 1, 5), 1, 1)},
      {"depthwise5x5_s2_same_m2", {2, 3, 10, 12}, {6, 1, 5, 5}, extra(Conv2dParams::square(2, 1, 1, 3), 1, 1)},
      {"depthwise3x3_s2_same_polyphase_34", {1, 2, 34, 34}, {2, 1, 3, 3}, extra(Conv2dParams::square(2, 0, 1, 2), 1, 1)},
      {"depthwise3x3_asymmetric_rows_only", {2, 4, 7, 6}, {4, 1, 3, 3}, extra(Conv2dParams::square(1, 1, 1, 4), 2, 0)},
  };
}

struct Inputs {
  Tensor x, w, b;
};
Inputs make_inputs(const Case& c, DType dtype, uint64_t seed) {
  Inputs in;
  in.x = random_tensor(c.x, dtype, -1, 1, seed);
  in.w = random_tensor(c.w, dtype, -1, 1, seed + 1);
  if (c.bias) in.b = random_tensor({c.w[0]}, dtype, -1, 1, seed + 2);
  return in;
}

}  // namespace

namespace {

void check_forward(const Case& c) {
  SCOPED_TRACE(c.name);
  Reference ref(c.x, c.w, c.p);
  for (DType dtype : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(dtype));
    Inputs in = make_inputs(c, dtype, 11);
    auto expected = ref.forward(values(in.x), values(in.w), in.b.defined() ? values(in.b) : std::vector<double>{});
    double rtol = dtype == DType::f64 ? 1e-12 : 1e-4, atol = dtype == DType::f64 ? 1e-12 : 1e-5;
    Tensor out = conv2d(in.x, in.w, in.b, c.p);
    EXPECT_EQ(out.shape(), ref.out_shape());
    EXPECT_EQ(out.dtype(), dtype);
    EXPECT_TRUE(all_close(out, expected, rtol, atol));
    // Strided x and w read the same values.
    EXPECT_TRUE(all_close(conv2d(non_contiguous(in.x), non_contiguous(in.w), in.b, c.p), expected, rtol, atol));
  }
}

void check_backward(const Case& c) {
  SCOPED_TRACE(c.name);
  Reference ref(c.x, c.w, c.p);
  for (DType dtype : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(dtype));
    Inputs in = make_inputs(c, dtype, 21);
    Tensor g = random_tensor(ref.out_shape(), dtype, -1, 1, 5);
    double rtol = dtype == DType::f64 ? 1e-12 : 1e-4, atol = dtype == DType::f64 ? 1e-12 : 1e-4;
    auto dx = ref.grad_input(values(g), values(in.w));
    auto dw = ref.grad_weight(values(g), values(in.x));
    Tensor gx = conv2d_backward_input(g, in.w, c.x, c.p);
    Tensor gw = conv2d_backward_weight(g, in.x, c.w, c.p);
    EXPECT_EQ(gx.shape(), c.x);
    EXPECT_EQ(gw.shape(), c.w);
    EXPECT_TRUE(all_close(gx, dx, rtol, atol));
    EXPECT_TRUE(all_close(gw, dw, rtol, atol));
    EXPECT_TRUE(all_close(conv2d_backward_input(non_contiguous(g), non_contiguous(in.w), c.x, c.p), dx, rtol, atol));
    EXPECT_TRUE(all_close(conv2d_backward_weight(non_contiguous(g), non_contiguous(in.x), c.w, c.p), dw, rtol, atol));
  }
}

}  // namespace

TEST(Conv2d, ForwardMatchesReference) {
  for (const Case& c : cases()) check_forward(c);
}

TEST(Conv2d, BackwardKernelsMatchReference) {
  for (const Case& c : cases()) check_backward(c);
}

// The depthwise kernels come in one variant per instruction set (tensor/cpu/depthwise_kernel.h,
// chosen like the GEMM's): every case through each variant this processor runs, plus planes long
// enough for the vector loops' full blocks (several 128-float blocks and a tail).
TEST(Conv2d, DepthwiseOnEveryCpuIsa) {
  std::vector<Case> depthwise;
  for (const Case& c : cases())
    if (c.w[1] == 1 && c.p.groups == c.x[1]) depthwise.push_back(c);
  depthwise.push_back({"depthwise3x3_50x47", {2, 3, 50, 47}, {3, 1, 3, 3}, Conv2dParams::square(1, 1, 1, 3)});
  depthwise.push_back({"depthwise5x5_s2_same_48", {1, 2, 48, 48}, {2, 1, 5, 5}, extra(Conv2dParams::square(2, 1, 1, 2), 1, 1)});
  depthwise.push_back({"depthwise3x3_m3_s2_41x39", {1, 2, 41, 39}, {6, 1, 3, 3}, Conv2dParams::square(2, 1, 1, 2)});
  ASSERT_GE(depthwise.size(), 15u);
  const cpu::CpuIsa saved = cpu::cpu_isa();
  for (cpu::CpuIsa isa : cpu::supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(isa));
    cpu::set_cpu_isa(isa);
    for (const Case& c : depthwise) {
      check_forward(c);
      check_backward(c);
    }
  }
  cpu::set_cpu_isa(saved);
}

TEST(Conv2d, BatchLargerThanThreadsSplitsAcrossThreads) {
  // With the batch >= the thread count each thread runs whole samples; the weight gradient
  // adds per-thread partial sums. Compare against the single-threaded run.
  Case c{"dense", {9, 3, 6, 6}, {4, 3, 3, 3}, Conv2dParams::square(1, 1)};
  Case d{"depthwise", {9, 4, 6, 6}, {8, 1, 3, 3}, Conv2dParams::square(1, 1, 1, 4)};
  for (const Case& k : {c, d}) {
    SCOPED_TRACE(k.name);
    Reference ref(k.x, k.w, k.p);
    Inputs in = make_inputs(k, DType::f64, 3);
    Tensor g = random_tensor(ref.out_shape(), DType::f64, -1, 1, 4);
    int saved = cpu::num_threads();
    cpu::set_num_threads(4);
    EXPECT_TRUE(all_close(conv2d(in.x, in.w, in.b, k.p), ref.forward(values(in.x), values(in.w), values(in.b)),
                          1e-12, 1e-12));
    EXPECT_TRUE(all_close(conv2d_backward_weight(g, in.x, k.w, k.p), ref.grad_weight(values(g), values(in.x)), 1e-12,
                          1e-12));
    EXPECT_TRUE(all_close(conv2d_backward_input(g, in.w, k.x, k.p), ref.grad_input(values(g), values(in.w)), 1e-12,
                          1e-12));
    cpu::set_num_threads(saved);
  }
}

TEST(Conv2d, GradcheckDenseGroupedDepthwise) {
  std::vector<Case> small = {
      {"dense3x3_s2_p1", {2, 2, 5, 5}, {3, 2, 3, 3}, Conv2dParams::square(2, 1)},
      {"dense1x1", {1, 3, 3, 4}, {2, 3, 1, 1}, Conv2dParams{}},
      {"dense_dilation2", {1, 2, 6, 5}, {2, 2, 2, 3}, params(1, 1, 1, 0, 2, 2, 1)},
      {"grouped2", {1, 4, 4, 4}, {4, 2, 3, 3}, Conv2dParams::square(1, 1, 1, 2)},
      {"depthwise_m1_5x5", {2, 3, 6, 6}, {3, 1, 5, 5}, Conv2dParams::square(2, 2, 1, 3)},
      {"depthwise_m2", {1, 2, 5, 6}, {4, 1, 3, 3}, Conv2dParams::square(1, 1, 1, 2)},
      {"dense_s2_same", {1, 2, 6, 6}, {2, 2, 3, 3}, extra(Conv2dParams::square(2, 0), 1, 1)},
      {"depthwise_s2_same", {2, 3, 6, 8}, {3, 1, 3, 3}, extra(Conv2dParams::square(2, 0, 1, 3), 1, 1)},
  };
  for (const Case& c : small) {
    SCOPED_TRACE(c.name);
    Inputs in = make_inputs(c, DType::f64, 31);
    Variable x(in.x, true), w(in.w, true), b(in.b, true);
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Variable>& v) { return conv2d(v[0], v[1], v[2], c.p); }, {x, w, b}));
  }
}

TEST(Conv2d, AutogradWithoutBiasAndPartialGrads) {
  Case c{"dense", {2, 3, 5, 5}, {4, 3, 3, 3}, Conv2dParams::square(1, 1)};
  Reference ref(c.x, c.w, c.p);
  Inputs in = make_inputs(c, DType::f64, 41);
  Tensor g = random_tensor(ref.out_shape(), DType::f64, -1, 1, 6);
  // Only x requires grad: w gets none, and no bias is passed.
  Variable x(in.x, true), w(in.w, false);
  Variable out = conv2d(x, w, Variable(), c.p);
  out.backward(g);
  EXPECT_TRUE(all_close(x.grad(), ref.grad_input(values(g), values(in.w)), 1e-12, 1e-12));
  EXPECT_FALSE(w.grad().defined());
  // Only w and bias: the bias gradient is Σ over n, oh, ow.
  Variable x2(in.x, false), w2(in.w, true), b2(random_tensor({4}, DType::f64, -1, 1, 7), true);
  conv2d(x2, w2, b2, c.p).backward(g);
  EXPECT_TRUE(all_close(w2.grad(), ref.grad_weight(values(g), values(in.x)), 1e-12, 1e-12));
  auto gv = values(g);
  std::vector<double> db(4, 0.0);
  for (size_t k = 0; k < gv.size(); ++k) db[(k / (ref.OH * ref.OW)) % 4] += gv[k];
  EXPECT_TRUE(all_close(b2.grad(), db, 1e-12, 1e-12));
}

namespace {
void expect_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "expected an ember::Error";
  } catch (const Error& e) {
    for (const auto& p : pieces) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Conv2d, RejectsBadShapesAndParams) {
  Tensor x = random_tensor({2, 4, 8, 8}, DType::f32);
  Tensor w = random_tensor({6, 4, 3, 3}, DType::f32);
  expect_error([&] { conv2d(x, random_tensor({6, 3, 3, 3}, DType::f32), Tensor(), {}); },
               {"conv2d", "[2, 4, 8, 8]", "[6, 3, 3, 3]", "C/groups"});
  expect_error([&] { conv2d(x, random_tensor({6, 1, 3, 3}, DType::f32), Tensor(), Conv2dParams::square(1, 0, 1, 3)); },
               {"conv2d", "[2, 4, 8, 8]", "not divisible by groups 3"});
  expect_error([&] { conv2d(x, random_tensor({5, 2, 3, 3}, DType::f32), Tensor(), Conv2dParams::square(1, 0, 1, 2)); },
               {"conv2d", "[5, 2, 3, 3]", "multiple of groups 2"});
  expect_error([&] { conv2d(x, random_tensor({6, 4, 9, 9}, DType::f32), Tensor(), {}); },
               {"conv2d", "larger than the padded input 8x8", "[6, 4, 9, 9]"});
  expect_error([&] { conv2d(x, w, Tensor(), Conv2dParams::square(1, 0, 5)); },
               {"conv2d", "extent 11x11", "larger than the padded input"});
  expect_error([&] { conv2d(x, w, Tensor(), Conv2dParams::square(0)); }, {"conv2d", "stride must be positive"});
  expect_error([&] { conv2d(x, w, Tensor(), Conv2dParams::square(1, -1)); }, {"conv2d", "padding"});
  expect_error([&] { conv2d(x, w, Tensor(), extra(Conv2dParams{}, 0, -1)); }, {"conv2d", "padding", "bottom/right (0, -1)"});
  expect_error([&] { conv2d(x.flatten(2), w, Tensor(), {}); }, {"conv2d", "(N, C, H, W)", "[2, 4, 64]"});
  expect_error([&] { conv2d(x, w.to(DType::f64), Tensor(), {}); }, {"conv2d", "f32", "f64"});
  expect_error([&] { conv2d(x, w, random_tensor({5}, DType::f32), {}); }, {"conv2d", "bias", "[5]"});
  expect_error([&] { conv2d_backward_input(random_tensor({2, 6, 5, 5}, DType::f32), w, x.shape(), {}); },
               {"conv2d_backward_input", "[2, 6, 5, 5]", "[2, 6, 6, 6]"});
  expect_error([&] { conv2d_backward_weight(random_tensor({2, 6, 5, 5}, DType::f32), x, w.shape(), {}); },
               {"conv2d_backward_weight", "[2, 6, 5, 5]", "[2, 6, 6, 6]"});
  expect_error([&] { conv2d(x.to(DType::bf16), w.to(DType::bf16), Tensor(), {}); }, {"conv2d", "bf16"});
}

TEST(Conv2d, CudaMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Reference ref(c.x, c.w, c.p);
    for (DType dtype : {DType::f32, DType::f64}) {
      SCOPED_TRACE(dtype_name(dtype));
      Inputs in = make_inputs(c, dtype, 51);
      Tensor g = random_tensor(ref.out_shape(), dtype, -1, 1, 8);
      Device dev = Device::cuda(0);
      Tensor bd = in.b.defined() ? in.b.to(dev) : Tensor();
      double tol = dtype == DType::f64 ? 1e-12 : 1e-4;
      EXPECT_TRUE(all_close(conv2d(in.x.to(dev), in.w.to(dev), bd, c.p).cpu(), conv2d(in.x, in.w, in.b, c.p), tol, tol));
      EXPECT_TRUE(all_close(conv2d(non_contiguous(in.x.to(dev)), in.w.to(dev), bd, c.p).cpu(),
                            conv2d(in.x, in.w, in.b, c.p), tol, tol));
      EXPECT_TRUE(all_close(conv2d_backward_input(g.to(dev), in.w.to(dev), c.x, c.p).cpu(),
                            conv2d_backward_input(g, in.w, c.x, c.p), tol, tol));
      EXPECT_TRUE(all_close(conv2d_backward_weight(g.to(dev), in.x.to(dev), c.w, c.p).cpu(),
                            conv2d_backward_weight(g, in.x, c.w, c.p), tol, tol));
    }
    // bf16 storage, f32 accumulation: compare with the f32 CPU result at bf16 precision.
    Inputs in = make_inputs(c, DType::f32, 61);
    Device dev = Device::cuda(0);
    Tensor xb = in.x.to(DType::bf16), wb = in.w.to(DType::bf16);
    Tensor bb = in.b.defined() ? in.b.to(DType::bf16) : Tensor();
    Tensor expected = conv2d(xb.to(DType::f32), wb.to(DType::f32), bb.defined() ? bb.to(DType::f32) : Tensor(), c.p);
    Tensor got = conv2d(xb.to(dev), wb.to(dev), bb.defined() ? bb.to(dev) : Tensor(), c.p).cpu().to(DType::f32);
    EXPECT_TRUE(all_close(got, expected, 1e-2, 2e-2));
  }
}

// The profile rows name the kind of conv: 1×1, depthwise, or dense k×k.
TEST(Conv2d, ProfileNamesTheKind) {
  Profiler prof;
  Variable x(random_tensor({2, 4, 5, 5}, DType::f32, -1, 1, 7), true);
  auto run = [&](Shape w_shape, Conv2dParams p) {
    Variable w(random_tensor(w_shape, DType::f32, -1, 1, 8), true);
    sum(conv2d(x, w, Variable(), p)).backward();
  };
  run({6, 4, 1, 1}, Conv2dParams{});
  run({4, 1, 3, 3}, Conv2dParams::square(1, 1, 1, 4));
  run({3, 4, 3, 3}, Conv2dParams::square(1, 1));
  const std::string table = prof.table();
  for (const char* name : {"conv2d_1x1", "conv2d_depthwise", "conv2d "})
    EXPECT_NE(table.find(name), std::string::npos) << name << " missing in\n" << table;
}
