// scaled_dot_product_attention: the blocked CPU kernels against softmax(q·kᵀ·s + mask)·v and
// its gradient written as plain float64 loops here; finite-difference gradients; error
// messages; CUDA against the CPU.
#include <cmath>
#include <limits>
#include <string>

#include "tests/support/test_util.h"

using ember::testing::error_of;

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// q (B, H, N, d), k (B, H, M, d), v (B, H, M, dv), mask broadcast to (B, H, N, M).
struct Dims {
  int64_t B, H, N, M, d, dv;
};
Dims dims_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
}

// Per score row (b, h, i): the probabilities P (M) from the definition; all zero when every
// key is masked out. Returns lse.
double reference_probs(const Dims& s, const std::vector<double>& q, const std::vector<double>& k,
                       const std::vector<double>& mask, bool mask_is_bool, double scale, int64_t bh, int64_t i,
                       std::vector<double>& p) {
  std::vector<double> score(s.M);
  double mx = -kInf;
  for (int64_t j = 0; j < s.M; ++j) {
    double dot = 0;
    for (int64_t c = 0; c < s.d; ++c) dot += q[(bh * s.N + i) * s.d + c] * k[(bh * s.M + j) * s.d + c];
    double term = 0;
    if (!mask.empty()) {
      double mv = mask[(bh * s.N + i) * s.M + j];
      term = mask_is_bool ? (mv != 0 ? 0.0 : -kInf) : mv;
    }
    score[j] = dot * scale + term;
    mx = std::max(mx, score[j]);
  }
  p.assign(s.M, 0.0);
  if (mx == -kInf) return -kInf;
  double sum = 0;
  for (int64_t j = 0; j < s.M; ++j) sum += std::exp(score[j] - mx);
  for (int64_t j = 0; j < s.M; ++j) p[j] = std::exp(score[j] - mx) / sum;
  return mx + std::log(sum);
}

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

// Forward, and with g the backward, by the formulas in tensor/ops/attention.h.
Reference reference_attention(const Tensor& q_t, const Tensor& k_t, const Tensor& v_t, const Tensor& mask_t,
                              double scale, const Tensor& g_t = Tensor()) {
  const Dims s = dims_of(q_t, k_t, v_t);
  if (scale == 0) scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  std::vector<double> q = values(q_t), k = values(k_t), v = values(v_t), mask, g;
  if (mask_t.defined()) mask = values(mask_t.expand({s.B, s.H, s.N, s.M}));
  const bool is_bool = mask_t.defined() && mask_t.dtype() == DType::boolean;
  if (g_t.defined()) g = values(g_t);
  Reference r;
  r.out.assign(s.B * s.H * s.N * s.dv, 0.0);
  r.lse.assign(s.B * s.H * s.N, 0.0);
  r.dq.assign(q.size(), 0.0);
  r.dk.assign(k.size(), 0.0);
  r.dv.assign(v.size(), 0.0);
  std::vector<double> p;
  for (int64_t bh = 0; bh < s.B * s.H; ++bh)
    for (int64_t i = 0; i < s.N; ++i) {
      r.lse[bh * s.N + i] = reference_probs(s, q, k, mask, is_bool, scale, bh, i, p);
      for (int64_t j = 0; j < s.M; ++j)
        for (int64_t c = 0; c < s.dv; ++c) r.out[(bh * s.N + i) * s.dv + c] += p[j] * v[(bh * s.M + j) * s.dv + c];
      if (g.empty()) continue;
      const double* gi = &g[(bh * s.N + i) * s.dv];
      std::vector<double> dp(s.M, 0.0);
      double dsum = 0;  // Σ_j P_ij dP_ij
      for (int64_t j = 0; j < s.M; ++j) {
        for (int64_t c = 0; c < s.dv; ++c) {
          dp[j] += gi[c] * v[(bh * s.M + j) * s.dv + c];
          r.dv[(bh * s.M + j) * s.dv + c] += p[j] * gi[c];
        }
        dsum += p[j] * dp[j];
      }
      for (int64_t j = 0; j < s.M; ++j) {
        const double ds = p[j] * (dp[j] - dsum) * scale;
        for (int64_t c = 0; c < s.d; ++c) {
          r.dq[(bh * s.N + i) * s.d + c] += ds * k[(bh * s.M + j) * s.d + c];
          r.dk[(bh * s.M + j) * s.d + c] += ds * q[(bh * s.N + i) * s.d + c];
        }
      }
    }
  return r;
}


// Restores the CPU thread count when a test ends.
struct ThreadsGuard {
  int saved = cpu::num_threads();
  ~ThreadsGuard() { cpu::set_num_threads(saved); }
};

struct Case {
  Dims s;
  uint64_t seed;
};

Tensor rand4(int64_t a, int64_t b, int64_t c, int64_t d, DType dt, uint64_t seed) {
  return random_tensor({a, b, c, d}, dt, -1.5, 1.5, seed);
}

// A bool mask (N, M) that keeps about 70% of the keys, with row 1 fully masked when asked.
Tensor random_bool_mask(const Shape& shape, uint64_t seed, bool mask_row_1) {
  Tensor m = gt(random_tensor(shape, DType::f64, 0, 1, seed), 0.3);
  if (mask_row_1 && shape.size() >= 2 && shape[shape.size() - 2] > 1) m.select(-2, 1).fill_(0.0);
  return m;
}

}  // namespace

TEST(Attention, ForwardMatchesSoftmaxReference) {
  const std::vector<Case> cases{{{2, 3, 5, 7, 8, 8}, 1},    {{1, 2, 65, 33, 32, 32}, 2}, {{2, 1, 130, 70, 8, 8}, 3},
                                {{1, 2, 9, 11, 8, 5}, 4},    {{1, 1, 1, 1, 32, 32}, 5},   {{3, 2, 17, 150, 32, 16}, 6}};
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    for (const Case& c : cases) {
      const Dims& s = c.s;
      Tensor q = rand4(s.B, s.H, s.N, s.d, dt, c.seed), k = rand4(s.B, s.H, s.M, s.d, dt, c.seed + 10);
      Tensor v = rand4(s.B, s.H, s.M, s.dv, dt, c.seed + 20);
      AttentionForward f = attention_forward(q, k, v);
      Reference r = reference_attention(q, k, v, Tensor(), 0);
      EXPECT_EQ(f.out.shape(), (Shape{s.B, s.H, s.N, s.dv}));
      EXPECT_TRUE(all_close(f.out, r.out, tol, tol)) << "N " << s.N << " M " << s.M << " d " << s.d;
      EXPECT_TRUE(all_close(f.lse, r.lse, tol, tol)) << "N " << s.N << " M " << s.M << " d " << s.d;
      EXPECT_TRUE(all_close(scaled_dot_product_attention(q, k, v, Tensor(), 0.3),
                            reference_attention(q, k, v, Tensor(), 0.3).out, tol, tol));
    }
  }
}

TEST(Attention, BoolAndAdditiveMasksBroadcast) {
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    for (int64_t d : {8, 32}) {
      const int64_t B = 2, H = 3, N = 70, M = 90;
      Tensor q = rand4(B, H, N, d, dt, 1), k = rand4(B, H, M, d, dt, 2), v = rand4(B, H, M, d, dt, 3);
      std::vector<Tensor> masks{
          random_bool_mask({N, M}, 4, true),                           // (N, M), row 1 fully masked
          random_bool_mask({B, 1, N, M}, 5, false),                    // per batch, shared by heads
          random_tensor({1, H, 1, M}, dt, -2, 2, 6),                   // additive, per head and key
          random_tensor({N, M}, DType::f64, -3, 1, 7),                 // additive, another dtype (converted)
      };
      Tensor additive_inf = random_tensor({N, M}, dt, -1, 1, 8);
      additive_inf.select(0, 2).fill_(-kInf);  // an additive mask can mask a row out too
      masks.push_back(additive_inf);
      for (size_t i = 0; i < masks.size(); ++i) {
        AttentionForward f = attention_forward(q, k, v, masks[i]);
        Reference r = reference_attention(q, k, v, masks[i], 0);
        EXPECT_TRUE(all_close(f.out, r.out, tol, tol)) << "mask " << i << " d " << d;
        EXPECT_TRUE(all_close(f.lse, r.lse, tol, tol)) << "mask " << i << " d " << d;
      }
      // a fully masked row gives zeros and lse = −∞
      AttentionForward f = attention_forward(q, k, v, masks[0]);
      EXPECT_EQ(values(ember::max(ember::abs(f.out.select(2, 1)))), std::vector<double>{0.0});
      EXPECT_EQ(values(f.lse.select(2, 1))[0], -kInf);
    }
  }
}

TEST(Attention, StridedInputsAreReadCorrectly) {
  // q, k, v as the heads of a (B, N, 3, H, d) qkv projection: strided views, last dim contiguous
  const int64_t B = 2, N = 37, H = 3, d = 8;
  Tensor qkv = random_tensor({B, N, 3, H, d}, DType::f64, -1, 1, 9).permute({2, 0, 3, 1, 4});  // (3, B, H, N, d)
  Tensor q = qkv.select(0, 0), k = qkv.select(0, 1), v = qkv.select(0, 2);
  EXPECT_FALSE(q.is_contiguous());
  Reference r = reference_attention(q, k, v, Tensor(), 0);
  EXPECT_TRUE(all_close(scaled_dot_product_attention(q, k, v), r.out, 1e-12, 1e-12));
  // last dim not contiguous: copied first
  EXPECT_TRUE(all_close(scaled_dot_product_attention(non_contiguous(q), non_contiguous(k), non_contiguous(v)), r.out,
                        1e-12, 1e-12));
}

TEST(Attention, BackwardMatchesReferenceOnBothParallelPaths) {
  ThreadsGuard restore;
  const int64_t N = 140, M = 300;  // several query and key blocks (of up to 128 rows)
  for (int threads : {1, 8}) {     // 1: a head per task; 8 (> B·H): key blocks, then query blocks
    cpu::set_num_threads(threads);
    for (int64_t d : {8, 32}) {
      for (int with_mask = 0; with_mask < 3; ++with_mask) {
        Tensor q = rand4(1, 2, N, d, DType::f64, 11), k = rand4(1, 2, M, d, DType::f64, 12);
        Tensor v = rand4(1, 2, M, d + 3, DType::f64, 13), g = rand4(1, 2, N, d + 3, DType::f64, 14);
        Tensor mask = with_mask == 0   ? Tensor()
                      : with_mask == 1 ? random_bool_mask({N, M}, 15, true)
                                       : random_tensor({1, 2, 1, M}, DType::f64, -2, 2, 16);
        AttentionForward f = attention_forward(q, k, v, mask);
        AttentionGrads grads = attention_backward(g, q, k, v, f.out, f.lse, mask);
        Reference r = reference_attention(q, k, v, mask, 0, g);
        const std::string what = "threads " + std::to_string(threads) + " d " + std::to_string(d) + " mask " +
                                 std::to_string(with_mask);
        EXPECT_TRUE(all_close(grads.dq, r.dq, 1e-10, 1e-12)) << what;
        EXPECT_TRUE(all_close(grads.dk, r.dk, 1e-10, 1e-12)) << what;
        EXPECT_TRUE(all_close(grads.dv, r.dv, 1e-10, 1e-12)) << what;
        if (with_mask == 1) {  // no gradient reaches the fully masked query row
          EXPECT_EQ(values(ember::max(ember::abs(grads.dq.select(2, 1)))), std::vector<double>{0.0});
        }
      }
    }
  }
}

TEST(AttentionGrad, FiniteDifferences) {
  auto var = [](int64_t n, int64_t d, uint64_t seed) { return Variable(rand4(2, 2, n, d, DType::f64, seed), true); };
  Tensor bool_mask = random_bool_mask({3, 5}, 21, true), add_mask = random_tensor({2, 1, 3, 5}, DType::f64, -1, 1, 22);
  for (const Tensor& mask : {Tensor(), bool_mask, add_mask}) {
    auto f = [&](const std::vector<Variable>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], mask); };
    EXPECT_TRUE(gradcheck(f, {var(3, 4, 1), var(5, 4, 2), var(5, 3, 3)}));
  }
  auto scaled = [](const std::vector<Variable>& in) {
    return scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), 0.7);
  };
  EXPECT_TRUE(gradcheck(scaled, {var(4, 2, 4), var(2, 2, 5), var(2, 2, 6)}));
  // only v wants a gradient
  EXPECT_TRUE(gradcheck(scaled, {Variable(rand4(2, 2, 4, 2, DType::f64, 7)), Variable(rand4(2, 2, 3, 2, DType::f64, 8)),
                                 var(3, 2, 9)}));
}

// The packed form: the same output as the three select views, its gradient laid out as qkv, equal
// to the composed form's (select + permute) and to finite differences.
TEST(AttentionGrad, PackedQkvMatchesTheComposedFormAndFiniteDifferences) {
  const int64_t B = 2, N = 5, H = 2, d = 3;
  Tensor mask = random_tensor({1, H, 1, N}, DType::f64, -2, 2, 30);
  for (const Tensor& m : {Tensor(), mask}) {
    const Tensor data = random_tensor({B, N, 3, H, d}, DType::f64, -1, 1, 31);
    Tensor g = random_tensor({B, H, N, d}, DType::f64, -1, 1, 32);
    Variable qkv(data, true), qkv2(data, true);
    Variable packed = scaled_dot_product_attention_qkv(qkv, m, 0.6);
    Variable heads = permute(qkv2, {2, 0, 3, 1, 4});
    Variable composed =
        scaled_dot_product_attention(select(heads, 0, 0), select(heads, 0, 1), select(heads, 0, 2), m, 0.6);
    EXPECT_TRUE(all_close(packed.data(), composed.data(), 1e-14, 1e-14));
    packed.backward(g);
    composed.backward(g);
    Tensor grad_packed = qkv.grad(), grad_composed = qkv2.grad();
    EXPECT_EQ(grad_packed.shape(), (Shape{B, N, 3, H, d}));
    EXPECT_TRUE(all_close(grad_packed, grad_composed, 1e-12, 1e-14));
    auto f = [&](const std::vector<Variable>& in) { return scaled_dot_product_attention_qkv(in[0], m, 0.6); };
    EXPECT_TRUE(gradcheck(f, {qkv}));
  }
  EXPECT_TRUE(error_of([] { scaled_dot_product_attention_qkv(Variable(random_tensor({2, 3, 2, 1, 4}))); })
                  .find("(B, N, 3, H, d)") != std::string::npos);
}

TEST(Attention, ErrorsNameTheProblem) {
  Tensor q = random_tensor({1, 2, 3, 4}), k = random_tensor({1, 2, 5, 4}), v = random_tensor({1, 2, 5, 6});
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos ? ::testing::AssertionSuccess()
                                                : ::testing::AssertionFailure() << msg;
  };
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q.select(0, 0), k, v); }),
                  "scaled_dot_product_attention: q must be (B, H, N, d), got [2, 3, 4]"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q, random_tensor({1, 2, 5, 3}), v); }),
                  "head dims differ: q [1, 2, 3, 4] has d = 4, k [1, 2, 5, 3] has d = 3"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q, k, random_tensor({1, 2, 4, 6})); }),
                  "k [1, 2, 5, 4] and v [1, 2, 4, 6] hold different numbers of keys"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q, random_tensor({1, 3, 5, 4}), v); }),
                  "batch and head dims differ"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q, k, v, ones({3, 4}, DType::boolean)); }),
                  "mask [3, 4] does not broadcast to (B, H, N, M) = [1, 2, 3, 5]"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q, k, v, ones({3, 5}, DType::i64)); }),
                  "mask dtype i64 not supported"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q.to(DType::f32), k, v); }), "dtypes differ (q f32, k f64, v f64)"));
  EXPECT_TRUE(has(error_of([&] { scaled_dot_product_attention(q.to(DType::bf16), k.to(DType::bf16), v.to(DType::bf16)); }),
                  "dtype bf16 not supported on the CPU"));
  AttentionForward f = attention_forward(q, k, v);
  EXPECT_TRUE(has(error_of([&] { attention_backward(f.out.select(1, 0), q, k, v, f.out, f.lse); }),
                  "backward: grad_out [1, 3, 6] and out [1, 2, 3, 6] must be (B, H, N, dv) = [1, 2, 3, 6]"));
}

// ---- CUDA ---------------------------------------------------------------------------------

TEST(AttentionCuda, ForwardAndBackwardMatchCpu) {
  EMBER_REQUIRE_CUDA();
  const MatmulBackend saved = matmul_backend();
  const Device gpu = Device::cuda(0);
  const int64_t B = 2, H = 3, N = 70, M = 45;
  for (MatmulBackend backend : {MatmulBackend::native, MatmulBackend::cublas}) {
    set_matmul_backend(backend);
    for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      for (int64_t d : {8, 32}) {
        for (int with_mask = 0; with_mask < 3; ++with_mask) {
          // CPU reference in f64 from the dtype-rounded inputs
          Tensor q = rand4(B, H, N, d, DType::f64, 1).to(dt), k = rand4(B, H, M, d, DType::f64, 2).to(dt);
          Tensor v = rand4(B, H, M, d, DType::f64, 3).to(dt), g = rand4(B, H, N, d, DType::f64, 4).to(dt);
          Tensor mask = with_mask == 0   ? Tensor()
                        : with_mask == 1 ? random_bool_mask({B, 1, N, M}, 5, true)
                                         : random_tensor({N, M}, DType::f32, -2, 2, 6);
          auto f64 = [](const Tensor& t) { return t.to(DType::f64); };
          AttentionForward cf = attention_forward(f64(q), f64(k), f64(v), mask);
          AttentionGrads cg = attention_backward(f64(g), f64(q), f64(k), f64(v), cf.out, cf.lse, mask);
          Tensor mask_gpu = mask.defined() ? mask.to(gpu) : mask;
          AttentionForward gf = attention_forward(q.to(gpu), k.to(gpu), v.to(gpu), mask_gpu);
          AttentionGrads gg = attention_backward(g.to(gpu), q.to(gpu), k.to(gpu), v.to(gpu), gf.out, gf.lse, mask_gpu);
          const double tol = dt == DType::f64 ? 1e-10 : dt == DType::f32 ? 1e-4 : 3e-2;
          const std::string what = std::string(matmul_backend_name(backend)) + " " + dtype_name(dt) + " d " +
                                   std::to_string(d) + " mask " + std::to_string(with_mask);
          EXPECT_EQ(gf.out.dtype(), dt) << what;
          EXPECT_TRUE(all_close(f64(gf.out.cpu()), cf.out, tol, tol)) << what;
          EXPECT_TRUE(all_close(f64(gf.lse.cpu()), cf.lse, tol, tol)) << what;
          EXPECT_TRUE(all_close(f64(gg.dq.cpu()), cg.dq, tol, tol)) << what;
          EXPECT_TRUE(all_close(f64(gg.dk.cpu()), cg.dk, tol, tol)) << what;
          EXPECT_TRUE(all_close(f64(gg.dv.cpu()), cg.dv, tol, tol)) << what;
        }
      }
    }
  }
  set_matmul_backend(saved);
}
