#include "tests/support/test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tensor/env.h"

namespace ember::testing {

Tensor random_tensor(const Shape& shape, DType dtype, double lo, double hi, uint64_t seed, Device device) {
  Generator gen(seed);
  return uniform(shape, lo, hi, DType::f64, Device::cpu(), &gen).to(dtype).to(device);
}

Tensor non_contiguous(const Tensor& t) {
  if (t.dim() >= 2) {
    // Store transposed, view back: same values, swapped strides.
    return t.transpose(0, t.dim() - 1).contiguous().transpose(0, t.dim() - 1);
  }
  // 1-D or scalar: every other element of a buffer twice the size.
  Shape big = t.shape();
  if (big.empty()) return t;
  big[0] *= 2;
  Tensor buf = zeros(big, t.dtype(), t.device());
  Tensor view = buf.slice(0, 0, big[0], 2);
  view.copy_(t);
  return view;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

::testing::AssertionResult all_close(const Tensor& actual, const std::vector<double>& expected, double rtol,
                                     double atol) {
  std::vector<double> a = values(actual);
  if (a.size() != expected.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << expected.size();
  for (size_t i = 0; i < a.size(); ++i) {
    double e = expected[i];
    bool both_nan = std::isnan(a[i]) && std::isnan(e);
    bool both_inf = std::isinf(a[i]) && std::isinf(e) && (a[i] > 0) == (e > 0);
    if (both_nan || both_inf) continue;
    if (!(std::fabs(a[i] - e) <= atol + rtol * std::fabs(e)))
      return ::testing::AssertionFailure() << "element " << i << ": got " << a[i] << ", expected " << e
                                           << " (|diff| " << std::fabs(a[i] - e) << " > atol " << atol << " + rtol "
                                           << rtol << "·|expected|)";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << actual.shape_str() << " vs " << expected.shape_str();
  return all_close(actual, values(expected), rtol, atol);
}

static double weighted_sum(const Variable& out, const Tensor& r) {
  auto o = values(out.data());
  auto w = values(r);
  double s = 0;
  for (size_t i = 0; i < o.size(); ++i) s += o[i] * w[i];
  return s;
}

::testing::AssertionResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                                     const std::vector<Variable>& inputs, double eps, double rtol, double atol) {
  for (const Variable& in : inputs)
    if (in.defined()) const_cast<Variable&>(in).zero_grad();  // a fresh gradient, not an accumulated one
  Variable out = f(inputs);
  Tensor r = random_tensor(out.shape(), out.dtype(), -1.0, 1.0, 99, out.device());
  out.backward(r);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Variable& in = inputs[k];
    if (!in.requires_grad()) continue;
    if (!in.grad().defined()) return ::testing::AssertionFailure() << "input " << k << " got no gradient";
    std::vector<double> analytic = values(in.grad());
    Tensor host = in.data().to(Device::cpu()).contiguous();
    EMBER_CHECK(host.dtype() == DType::f64, "gradcheck: inputs must be f64");
    // Perturb the variable's own storage in place so f sees the change.
    Tensor target = in.data();
    for (int64_t i = 0; i < host.numel(); ++i) {
      double orig = host.data<double>()[i];
      auto eval = [&](double v) {
        host.data<double>()[i] = v;
        target.copy_(host);
        NoGradGuard ng;
        return weighted_sum(f(inputs), r);
      };
      double numeric = (eval(orig + eps) - eval(orig - eps)) / (2 * eps);
      host.data<double>()[i] = orig;
      target.copy_(host);
      if (!(std::fabs(numeric - analytic[i]) <= atol + rtol * std::fabs(numeric)))
        return ::testing::AssertionFailure() << "input " << k << " element " << i << ": analytic " << analytic[i]
                                             << ", numeric " << numeric;
    }
  }
  return ::testing::AssertionSuccess();
}

// The tests compare f32 CUDA results with the CPU at f32 precision, so EMBER_MATMUL=auto and
// EMBER_CONV=auto must not round f32 inputs to TF32 in them: turned off before any test runs
// (every test program links this file). test_fast_paths turns it on where it tests TF32.
[[maybe_unused]] static const bool tf32_off_for_tests = [] {
  set_allow_tf32(false);
  return true;
}();

bool expect_cuda() {
  static const bool on = env_flag("EMBER_EXPECT_CUDA");
  return on;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

CommandResult run_command(const std::string& command_line) {
  const std::string cmd = command_line + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed: " + command_line};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

int count_lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

bool has_state(const nn::Module& module, const std::string& name) {
  for (const auto& [k, t] : module.state_dict())
    if (k == name) return true;
  return false;
}

void poison(Tensor& t) { t.fill_(std::nan("")); }

}  // namespace ember::testing
