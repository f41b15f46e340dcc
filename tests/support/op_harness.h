// One harness for every op on every backend, after ggml's test-backend-ops. An OpCase names an
// op (as a differentiable function of Variables), its inputs (shape, value range, layout:
// contiguous, strided or broadcast), the dtypes to run it in, and a float64 reference written
// from the formula, element by element. run_case() then, for every dtype:
//
//   - builds the inputs from a fixed seed, laid out as asked, on the backend under test;
//   - runs the op with every fresh buffer NaN-poisoned (the program sets EMBER_POISON_ALLOC=1,
//     see tensor/tensor.cpp), so an output element the kernel never writes shows up as NaN;
//   - compares the result with the reference applied to the inputs' own values (so only the
//     op's rounding counts), within the dtype's bound times the case's factor;
//
// and, when the case is differentiable, checks the gradients: by central finite differences in
// float64 on the CPU (testing::gradcheck), and on CUDA against the CPU's gradients. A backend
// that is absent is skipped visibly (GTEST_SKIP with the reason). run_perf() times each case's
// forward (f32) on every backend present and prints GFLOP/s (cases that state their FLOPs) or
// GB/s (inputs read plus output written).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace ember::testing {

// A float64 operand or result, row-major.
struct RefTensor {
  Shape shape;
  std::vector<double> v;
  RefTensor() = default;
  explicit RefTensor(Shape s) : shape(std::move(s)), v(static_cast<size_t>(shape_numel(shape))) {}
  int64_t numel() const { return static_cast<int64_t>(v.size()); }
  int64_t size(int64_t d) const { return shape[static_cast<size_t>(d < 0 ? d + static_cast<int64_t>(shape.size()) : d)]; }
  // Row-major offset of a full index.
  int64_t offset(std::initializer_list<int64_t> index) const {
    int64_t off = 0;
    size_t d = 0;
    for (int64_t i : index) off = off * shape[d++] + i;
    return off;
  }
  double& at(std::initializer_list<int64_t> index) { return v[static_cast<size_t>(offset(index))]; }
  double at(std::initializer_list<int64_t> index) const { return v[static_cast<size_t>(offset(index))]; }
};

enum class Layout {
  contiguous,
  strided,    // the same values through a non-contiguous view (testing::non_contiguous)
  broadcast,  // stored at `shape`, viewed expanded to `expand_to` (stride-0 dims)
};

struct Arg {
  Shape shape = {};
  double lo = -1, hi = 1;  // uniform values in [lo, hi)
  Layout layout = Layout::contiguous;
  Shape expand_to = {};
  enum Kind { value, mask, index } kind = value;  // mask: bool (x > 0); index: i64 in [0, classes)
  int64_t classes = 0;
  bool grad = true;       // a value the gradient check differentiates
  bool integers = false;  // values rounded down to integers (so comparisons see ties)
};

struct OpCase {
  std::string name = {};  // unique; letters, digits and '_' (it names the gtest case)
  std::vector<Arg> args = {};
  std::function<Variable(const std::vector<Variable>&)> fn = {};
  std::function<RefTensor(const std::vector<RefTensor>&)> ref = {};
  std::vector<DType> dtypes = {DType::f32, DType::f64};
  double tol = 1;     // multiplies the dtype's bound (long sums, exp of large values)
  bool grad = true;   // check gradients (the op is differentiable in its value args)
  // > 0: |result − reference| ≤ atol, replacing the dtype's bound (a statistic of a random draw,
  // such as the kept fraction of dropout, which is close to its expectation but not equal).
  double atol = 0;
  // FLOPs of one forward, from the inputs' shapes (0: report GB/s only).
  std::function<double(const std::vector<Shape>&)> flops = {};
  // Bigger inputs for --perf (empty: args).
  std::vector<Arg> perf_args = {};
};

// The checks of one case on one backend (Device::cpu() or a CUDA device).
void run_case(const OpCase& c, Device device);
// --perf: `iterations` timed forwards per case and backend after one warm-up.
void run_perf(const std::vector<OpCase>& cases, int iterations);

// A tensor's values (any layout, any device) as a float64 RefTensor of its shape.
RefTensor ref_of(const Tensor& t);

}  // namespace ember::testing
