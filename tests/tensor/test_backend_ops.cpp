// Every op on every backend: the table of cases the op harness runs (tests/support/op_harness.h).
// Each case is one ctest test per backend, OpsCpu.<case> and OpsCuda.<case> (the latter skipped,
// visibly, without a GPU), all with NaN-poisoned fresh buffers. Families covered: every op of
// EMBER_UNARY_OPS and EMBER_BINARY_OPS (from the lists: adding an op adds its cases), clamp,
// where, every reduction, softmax/log_softmax/logsumexp, layer_norm, matmul/linear, conv2d,
// pooling, bilinear resize, cross_entropy and attention; contiguous, strided and broadcast
// inputs; f32 and f64 (16-bit dtypes for the elementwise ops). backend_op_more_cases.h adds
// batch_norm, random, dropout/drop_path, copy, cat/stack/pad, mul_sum_to, AdamW and SGD.
// docs/TESTING.md lists every op family's cases.
//
//   test_backend_ops                   the checks (as ctest runs them)
//   test_backend_ops --perf [N] [NAME]  time each case's forward instead (those whose name
//                                      contains NAME): N calls (default 20), after a warm-up;
//                                      GFLOP/s where the case states its FLOPs, else GB/s
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>

#include "tests/support/op_harness.h"
#include "tests/support/references.h"
#include "tests/tensor/backend_op_more_cases.h"
#include "tests/tensor/backend_op_references.h"

using namespace ember;
using namespace ember::testing;
namespace refs = ember::testing::refs;

namespace {

using Vars = std::vector<Variable>;
using Refs = std::vector<RefTensor>;
constexpr double kInf = std::numeric_limits<double>::infinity();
const std::vector<DType> kAllFloat = {DType::f32, DType::f64, DType::bf16, DType::f16};

Arg value(Shape shape, double lo = -1, double hi = 1) { return Arg{.shape = std::move(shape), .lo = lo, .hi = hi}; }
Arg strided(Shape shape, double lo = -1, double hi = 1) {
  return Arg{.shape = std::move(shape), .lo = lo, .hi = hi, .layout = Layout::strided};
}
Arg expanded(Shape stored, Shape to, double lo = -1, double hi = 1) {
  return Arg{.shape = std::move(stored), .lo = lo, .hi = hi, .layout = Layout::broadcast, .expand_to = std::move(to)};
}

void add_unary(std::vector<OpCase>& cases) {
  for (UnaryOp op : kUnaryOps) {
    const auto& r = reference_of(op);
    auto fn = [op](const Vars& v) { return unary(op, v[0]); };
    auto ref = [op](const Refs& x) { return refs::map(x[0], reference_of(op).f); };
    const std::string name = std::string("unary_") + unary_op_name(op);
    cases.push_back({.name = name, .args = {value({4, 5}, r.lo, r.hi)}, .fn = fn, .ref = ref, .dtypes = kAllFloat,
                     .perf_args = {value({1 << 20}, r.lo, r.hi)}});
    cases.push_back({.name = name + "_strided", .args = {strided({3, 4, 5}, r.lo, r.hi)}, .fn = fn, .ref = ref,
                     .dtypes = kAllFloat});
    cases.push_back({.name = name + "_broadcast", .args = {expanded({1, 5}, {3, 5}, r.lo, r.hi)}, .fn = fn,
                     .ref = ref, .dtypes = {DType::f32}});
  }
}

void add_binary(std::vector<OpCase>& cases) {
  for (BinaryOp op : kBinaryOps) {
    const auto& r = reference_of(op);
    const bool compares = binary_op_compares(op);
    auto fn = [op](const Vars& v) {
      if (binary_op_compares(op)) return Variable(binary(op, v[0].data(), v[1].data()));
      switch (op) {  // the differentiable functions (autograd/functions/binary.h)
        case BinaryOp::add: return add(v[0], v[1]);
        case BinaryOp::sub: return sub(v[0], v[1]);
        case BinaryOp::mul: return mul(v[0], v[1]);
        case BinaryOp::div: return div(v[0], v[1]);
        case BinaryOp::pow: return pow(v[0], v[1]);
        case BinaryOp::maximum: return maximum(v[0], v[1]);
        case BinaryOp::minimum: return minimum(v[0], v[1]);
        default: return Variable(binary(op, v[0].data(), v[1].data()));
      }
    };
    auto ref = [op](const Refs& x) { return refs::zip(x[0], x[1], reference_of(op).f); };
    // comparisons: integer values, so ties happen
    auto a = [&](Arg arg) {
      arg.lo = r.a_lo, arg.hi = r.a_hi, arg.integers = compares;
      return arg;
    };
    auto b = [&](Arg arg) {
      arg.lo = r.b_lo, arg.hi = r.b_hi, arg.integers = compares;
      return arg;
    };
    std::vector<DType> dtypes = kAllFloat;
    if (op != BinaryOp::div && op != BinaryOp::pow) dtypes.push_back(DType::i32);
    const std::string name = std::string("binary_") + binary_op_name(op);
    cases.push_back({.name = name + "_broadcast", .args = {a(value({3, 1, 5})), b(value({4, 5}))}, .fn = fn,
                     .ref = ref, .dtypes = dtypes, .grad = !compares,
                     .perf_args = {a(value({1 << 20})), b(value({1 << 20}))}});
    cases.push_back({.name = name + "_strided", .args = {a(strided({4, 6})), b(strided({4, 6}))}, .fn = fn, .ref = ref,
                     .dtypes = dtypes, .grad = !compares});
    cases.push_back({.name = name + "_expanded", .args = {a(expanded({4, 1}, {4, 6})), b(value({4, 6}))}, .fn = fn,
                     .ref = ref, .grad = !compares});
    cases.push_back({.name = name + "_scalar", .args = {a(value({3, 4})), b(value({}))}, .fn = fn, .ref = ref,
                     .grad = !compares});
  }
}

void add_clamp_where(std::vector<OpCase>& cases) {
  for (auto [tag, lo, hi] : {std::tuple{"two_sided", -0.5, 0.7}, std::tuple{"below", -kInf, 0.3}}) {
    cases.push_back({.name = std::string("clamp_") + tag,
                     .args = {strided({3, 4, 5})},
                     .fn = [lo = lo, hi = hi](const Vars& v) { return clamp(v[0], lo, hi); },
                     .ref = [lo = lo, hi = hi](const Refs& x) {
                       return refs::map(x[0], [&](double e) { return std::min(std::max(e, lo), hi); });
                     },
                     .dtypes = {DType::f32, DType::f64, DType::bf16}});
  }
  auto where_ref = [](const Refs& x) {
    RefTensor r(refs::broadcast(refs::broadcast(x[0].shape, x[1].shape), x[2].shape));
    for (int64_t i = 0; i < r.numel(); ++i)
      r.v[i] = x[0].v[refs::broadcast_index(r.shape, x[0].shape, i)] != 0 ? x[1].v[refs::broadcast_index(r.shape, x[1].shape, i)]
                                                                          : x[2].v[refs::broadcast_index(r.shape, x[2].shape, i)];
    return r;
  };
  auto where_fn = [](const Vars& v) { return where(v[0].data(), v[1], v[2]); };
  cases.push_back({.name = "where_broadcast",
                   .args = {Arg{.shape = {3, 1, 5}, .kind = Arg::mask}, value({4, 1}), value({5})},
                   .fn = where_fn, .ref = where_ref, .dtypes = {DType::f32, DType::f64, DType::bf16}});
  cases.push_back({.name = "where_strided",
                   .args = {Arg{.shape = {4, 5}, .layout = Layout::strided, .kind = Arg::mask}, strided({4, 5}), strided({4, 5})},
                   .fn = where_fn, .ref = where_ref});
}

void add_reduce(std::vector<OpCase>& cases) {
  struct Dims {
    const char* tag;
    std::vector<int64_t> dims;
    bool keepdim;
  };
  const Dims dim_sets[] = {{"all", {}, false}, {"dim1", {1}, false}, {"dims02_keep", {0, 2}, true}, {"last_keep", {-1}, true}};
  auto max_of = [](const std::vector<double>& g) { return *std::max_element(g.begin(), g.end()); };
  auto min_of = [](const std::vector<double>& g) { return *std::min_element(g.begin(), g.end()); };
  auto mean_of = [](const std::vector<double>& g) { return refs::sum_of(g) / static_cast<double>(g.size()); };
  auto var_of = [mean_of](const std::vector<double>& g) {
    double m = mean_of(g), s = 0;
    for (double v : g) s += (v - m) * (v - m);
    return s / static_cast<double>(g.size() - 1);
  };
  auto argmax_of = [](const std::vector<double>& g) { return double(std::max_element(g.begin(), g.end()) - g.begin()); };
  auto argmin_of = [](const std::vector<double>& g) { return double(std::min_element(g.begin(), g.end()) - g.begin()); };
  for (const Dims& d : dim_sets) {
    struct Row {
      const char* name;
      std::function<Variable(const Variable&)> fn;
      std::function<double(const std::vector<double>&)> ref;
      bool grad;
    };
    const auto dims = d.dims;
    const bool keep = d.keepdim;
    const Row rows[] = {
        {"sum", [=](const Variable& x) { return sum(x, dims, keep); }, refs::sum_of, true},
        {"mean", [=](const Variable& x) { return mean(x, dims, keep); }, mean_of, true},
        {"max", [=](const Variable& x) { return max(x, dims, keep); }, max_of, true},
        {"min", [=](const Variable& x) { return min(x, dims, keep); }, min_of, true},
        {"var", [=](const Variable& x) { return var(x, dims, 1, keep); }, var_of, true},
        {"argmax", [=](const Variable& x) { return Variable(argmax(x.data(), dims, keep)); }, argmax_of, false},
        {"argmin", [=](const Variable& x) { return Variable(argmin(x.data(), dims, keep)); }, argmin_of, false},
    };
    for (const Row& row : rows) {
      auto fn = row.fn;
      auto ref = row.ref;
      cases.push_back({.name = std::string("reduce_") + row.name + "_" + d.tag,
                       .args = {strided({3, 4, 5})},
                       .fn = [fn](const Vars& v) { return fn(v[0]); },
                       .ref = [ref, dims, keep](const Refs& x) { return refs::reduce(x[0], dims, keep, ref); },
                       .dtypes = {DType::f32, DType::f64, DType::bf16},
                       .tol = 2,
                       .grad = row.grad,
                       .perf_args = {value({256, 4096})}});
    }
  }
}

void add_softmax_norm(std::vector<OpCase>& cases) {
  for (int64_t dim : {-1, 1}) {
    const std::string tag = dim == -1 ? "_last" : "_dim1";
    cases.push_back({.name = "softmax" + tag, .args = {strided({3, 4, 5}, -3, 3)},
                     .fn = [dim](const Vars& v) { return softmax(v[0], dim); },
                     .ref = [dim](const Refs& x) { return refs::along_last(x[0], dim, true, refs::softmax_row); },
                     .perf_args = {value({1024, 1000}, -3, 3)}});
    cases.push_back({.name = "log_softmax" + tag, .args = {strided({3, 4, 5}, -3, 3)},
                     .fn = [dim](const Vars& v) { return log_softmax(v[0], dim); },
                     .ref = [dim](const Refs& x) { return refs::along_last(x[0], dim, true, refs::log_softmax_row); }});
    cases.push_back({.name = "logsumexp" + tag, .args = {strided({3, 4, 5}, -3, 3)},
                     .fn = [dim](const Vars& v) { return logsumexp(v[0], dim); },
                     .ref = [dim](const Refs& x) { return refs::along_last(x[0], dim, false, refs::logsumexp_row); }});
  }
  auto ln_ref = [](const Refs& x) { return refs::layer_norm(x[0], x[1], x[2], 1e-5); };
  cases.push_back({.name = "layer_norm", .args = {value({2, 3, 8}, -2, 2), value({8}), value({8})},
                   .fn = [](const Vars& v) { return layer_norm(v[0], v[1], v[2], 1e-5); }, .ref = ln_ref, .tol = 5,
                   .perf_args = {value({4096, 768}), value({768}), value({768})}});
  cases.push_back({.name = "layer_norm_strided", .args = {strided({4, 8}, -2, 2), value({8}), value({8})},
                   .fn = [](const Vars& v) { return layer_norm(v[0], v[1], v[2], 1e-5); }, .ref = ln_ref, .tol = 5});
}

double matmul_flops(const std::vector<Shape>& s) {
  return 2.0 * static_cast<double>(shape_numel(s[0])) * static_cast<double>(s[1].back());
}

void add_matmul_conv(std::vector<OpCase>& cases) {
  auto mm = [](const Vars& v) { return matmul(v[0], v[1]); };
  auto mm_ref = [](const Refs& x) { return refs::matmul(x[0], x[1]); };
  cases.push_back({.name = "matmul", .args = {value({5, 7}), value({7, 6})}, .fn = mm, .ref = mm_ref, .tol = 5,
                   .flops = matmul_flops, .perf_args = {value({512, 512}), value({512, 512})}});
  cases.push_back({.name = "matmul_transposed", .args = {strided({5, 7}), strided({7, 6})}, .fn = mm, .ref = mm_ref, .tol = 5});
  cases.push_back({.name = "matmul_batched_broadcast", .args = {value({2, 3, 5, 4}), value({4, 6})}, .fn = mm, .ref = mm_ref,
                   .tol = 5});
  cases.push_back({.name = "matmul_batched_expanded", .args = {value({3, 5, 4}), expanded({1, 4, 6}, {3, 4, 6})}, .fn = mm,
                   .ref = mm_ref, .tol = 5});
  cases.push_back({.name = "linear", .args = {value({2, 3, 4}), value({5, 4}), value({5})},
                   .fn = [](const Vars& v) { return linear(v[0], v[1], v[2]); },
                   .ref = [](const Refs& x) {
                     RefTensor wt({x[1].size(1), x[1].size(0)});
                     for (int64_t i = 0; i < wt.size(0); ++i)
                       for (int64_t j = 0; j < wt.size(1); ++j) wt.at({i, j}) = x[1].at({j, i});
                     return refs::zip(refs::matmul(x[0], wt), x[2], [](double a, double b) { return a + b; });
                   },
                   .tol = 5});
  struct Conv {
    const char* name;
    Shape x, w;
    int64_t stride, pad, dilation, groups;
    bool strided_x;
  };
  const Conv convs[] = {{"conv2d_3x3", {2, 4, 7, 7}, {6, 4, 3, 3}, 1, 1, 1, 1, false},
                        {"conv2d_stride2", {2, 4, 7, 6}, {6, 4, 3, 3}, 2, 1, 1, 1, true},
                        {"conv2d_grouped", {2, 4, 6, 6}, {6, 2, 3, 3}, 1, 1, 1, 2, false},
                        {"conv2d_depthwise_5x5", {2, 4, 7, 7}, {4, 1, 5, 5}, 2, 2, 1, 4, true},
                        {"conv2d_1x1", {2, 8, 5, 5}, {6, 8, 1, 1}, 1, 0, 1, 1, true},
                        {"conv2d_dilated", {1, 3, 8, 8}, {4, 3, 3, 3}, 1, 2, 2, 1, false}};
  for (const Conv& c : convs) {
    const Conv2dParams p = Conv2dParams::square(c.stride, c.pad, c.dilation, c.groups);
    const int64_t stride = c.stride, pad = c.pad, dilation = c.dilation, groups = c.groups;
    cases.push_back({.name = c.name,
                     .args = {c.strided_x ? strided(c.x) : value(c.x), value(c.w, -0.5, 0.5), value({c.w[0]})},
                     .fn = [p](const Vars& v) { return conv2d(v[0], v[1], v[2], p); },
                     .ref = [=](const Refs& x) { return refs::conv2d(x[0], x[1], &x[2], stride, pad, dilation, groups); },
                     .tol = 5,
                     .flops = [=](const std::vector<Shape>& s) {  // 2·(C/groups)·k·k per output element
                       const int64_t oh = (s[0][2] + 2 * pad - dilation * (s[1][2] - 1) - 1) / stride + 1;
                       const int64_t ow = (s[0][3] + 2 * pad - dilation * (s[1][3] - 1) - 1) / stride + 1;
                       return 2.0 * static_cast<double>(s[0][0] * s[1][0] * oh * ow * s[1][1] * s[1][2] * s[1][3]);
                     },
                     .perf_args = {value({8, c.x[1] * 8, 32, 32}), value({c.w[0] * 8, c.w[1] * 8, c.w[2], c.w[3]}), value({c.w[0] * 8})}});
  }
}

void add_pool_resize_loss(std::vector<OpCase>& cases) {
  cases.push_back({.name = "max_pool2d_3s2p1", .args = {strided({2, 3, 7, 7})},
                   .fn = [](const Vars& v) { return max_pool2d(v[0], 3, 2, 1); },
                   .ref = [](const Refs& x) { return refs::pool2d(x[0], 3, 2, 1, false); }});
  cases.push_back({.name = "avg_pool2d_2s2", .args = {value({2, 3, 6, 7})},
                   .fn = [](const Vars& v) { return avg_pool2d(v[0], 2, 2, 0); },
                   .ref = [](const Refs& x) { return refs::pool2d(x[0], 2, 2, 0, true); }});
  cases.push_back({.name = "avg_pool2d_3s1p1", .args = {strided({2, 3, 5, 5})},
                   .fn = [](const Vars& v) { return avg_pool2d(v[0], 3, 1, 1); },
                   .ref = [](const Refs& x) { return refs::pool2d(x[0], 3, 1, 1, true); }});
  cases.push_back({.name = "adaptive_avg_pool2d", .args = {strided({2, 3, 7, 5})},
                   .fn = [](const Vars& v) { return adaptive_avg_pool2d(v[0], 3, 2); },
                   .ref = [](const Refs& x) { return refs::adaptive_avg_pool2d(x[0], 3, 2); }});
  for (bool corners : {false, true}) {
    cases.push_back({.name = corners ? "bilinear_align_corners" : "bilinear", .args = {strided({2, 3, 5, 6})},
                     .fn = [corners](const Vars& v) { return interpolate_bilinear(v[0], 7, 4, corners); },
                     .ref = [corners](const Refs& x) { return refs::bilinear(x[0], 7, 4, corners); }});
  }
  for (double smoothing : {0.0, 0.1}) {
    cases.push_back({.name = smoothing == 0 ? "cross_entropy" : "cross_entropy_smoothed",
                     .args = {value({6, 5}, -3, 3), Arg{.shape = {6}, .kind = Arg::index, .classes = 5}},
                     .fn = [smoothing](const Vars& v) { return cross_entropy(v[0], v[1].data(), smoothing); },
                     .ref = [smoothing](const Refs& x) { return refs::cross_entropy(x[0], x[1], smoothing); }});
  }
  cases.push_back({.name = "attention", .args = {value({2, 2, 5, 4}), value({2, 2, 6, 4}), strided({2, 2, 6, 3})},
                   .fn = [](const Vars& v) { return scaled_dot_product_attention(v[0], v[1], v[2]); },
                   .ref = [](const Refs& x) { return refs::attention(x[0], x[1], x[2]); }, .tol = 5});
  cases.push_back({.name = "attention_qkv", .args = {value({2, 5, 3, 2, 4})},  // (B, N, 3, H, d)
                   .fn = [](const Vars& v) { return scaled_dot_product_attention_qkv(v[0]); },
                   .ref =
                       [](const Refs& x) {
                         return refs::attention(refs::qkv_part(x[0], 0), refs::qkv_part(x[0], 1),
                                                refs::qkv_part(x[0], 2));
                       },
                   .tol = 5});
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> cases;
  add_unary(cases);
  add_binary(cases);
  add_clamp_where(cases);
  add_reduce(cases);
  add_softmax_norm(cases);
  add_matmul_conv(cases);
  add_pool_resize_loss(cases);
  more::add_more_cases(cases);  // batch_norm, random, dropout, copy, shape ops, mul_sum_to, optimizers
  return cases;
}

class CaseTest : public ::testing::Test {
 public:
  CaseTest(OpCase c, Device d) : case_(std::move(c)), device_(d) {}
  void TestBody() override { run_case(case_, device_); }

 private:
  OpCase case_;
  Device device_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--perf") == 0) {
    std::vector<OpCase> cases;
    for (OpCase& c : all_cases())
      if (argc < 4 || c.name.find(argv[3]) != std::string::npos) cases.push_back(std::move(c));
    run_perf(cases, argc >= 3 ? std::atoi(argv[2]) : 20);
    return 0;
  }
  // Every fresh buffer NaN until written (read by the first allocation, so before any).
  setenv("EMBER_POISON_ALLOC", "1", 1);
  if (!std::isnan(empty({1}, DType::f32).item())) {
    std::fprintf(stderr, "test_backend_ops: EMBER_POISON_ALLOC did not poison a fresh buffer\n");
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  for (const OpCase& c : all_cases()) {
    for (Device d : {Device::cpu(), Device::cuda(0)}) {
      ::testing::RegisterTest(d.is_cpu() ? "OpsCpu" : "OpsCuda", c.name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                              [c, d]() -> CaseTest* { return new CaseTest(c, d); });
    }
  }
  return RUN_ALL_TESTS();
}
