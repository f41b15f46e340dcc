// What every test shares: random inputs, float64 references, finite-difference gradient
// checks, tensor comparison with a per-dtype bound, and the visible CUDA skip.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "nn/module.h"

namespace ember::testing {

// Uniform values in [lo, hi) (never all zeros), seeded.
Tensor random_tensor(const Shape& shape, DType dtype = DType::f64, double lo = -1.0, double hi = 1.0,
                     uint64_t seed = 1234, Device device = Device::cpu());
// The same values as `t`, viewed through a non-contiguous layout (a transposed copy transposed
// back, or a strided slice of a larger buffer), to exercise strided kernels.
Tensor non_contiguous(const Tensor& t);

// Host copy as doubles (row-major over t's shape).
std::vector<double> values(const Tensor& t);

// max |a - b| / (atol + rtol·|b|) <= 1 for every element, with the first offender reported.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol = 1e-5,
                                     double atol = 1e-8);
::testing::AssertionResult all_close(const Tensor& actual, const std::vector<double>& expected, double rtol = 1e-5,
                                     double atol = 1e-8);

// Finite-difference check of autograd. f maps Variables to one Variable. Every input that
// requires grad is perturbed element by element (central differences, step eps) and the
// numeric derivative of sum(f(x) · R), for a fixed random R, is compared with the analytic
// gradient. Inputs should be f64.
::testing::AssertionResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                                     const std::vector<Variable>& inputs, double eps = 1e-6, double rtol = 1e-4,
                                     double atol = 1e-6);

// The message of the ember::Error that fn throws, or "no error" when it throws none.
std::string error_of(const std::function<void()>& fn);

// A shell command line run to the end: its exit code (-1 when it did not exit normally) and its
// stdout and stderr together. The end-to-end tests run the apps with it.
struct CommandResult {
  int code;
  std::string output;
};
CommandResult run_command(const std::string& command_line);
#ifdef EMBER_APPS_BIN_DIR  // defined for every test program (tests/CMakeLists.txt)
// One of the apps of the build tree, "ember-predict --flag ...", after `env` (VAR=value ...).
inline CommandResult run_app(const std::string& args, const std::string& env = "") {
  return run_command((env.empty() ? "" : env + " ") + std::string(EMBER_APPS_BIN_DIR) + "/" + args);
}
#endif

// A text file's contents ("" when it cannot be read), and the number of '\n' in a text.
std::string read_text(const std::string& path);
int count_lines(const std::string& text);

// Whether the module's state dict has an entry of this name.
bool has_state(const nn::Module& module, const std::string& name);

// Fills a tensor with NaN so kernels that leave elements unwritten are caught.
void poison(Tensor& t);

}  // namespace ember::testing

namespace ember::testing {
// EMBER_EXPECT_CUDA=1 in the environment says "this machine has a GPU": every CUDA test that
// would be skipped fails instead, so a run with every CUDA test skipped cannot come out green
// there (scripts/gpu-check sets it). Parsed by env_flag (tensor/env.h): a value other than
// 0 or 1 throws.
bool expect_cuda();
}  // namespace ember::testing

// The one place a CUDA test decides it cannot run: skipped, with the reason shown in the test
// output, or failed under EMBER_EXPECT_CUDA=1.
#define EMBER_REQUIRE_CUDA()                                                                         \
  do {                                                                                               \
    if (!::ember::cuda::is_available()) {                                                            \
      if (::ember::testing::expect_cuda())                                                           \
        GTEST_FAIL() << "EMBER_EXPECT_CUDA=1, but no CUDA: " << ::ember::cuda::unavailable_reason(); \
      GTEST_SKIP() << "CUDA test skipped: " << ::ember::cuda::unavailable_reason();                  \
    }                                                                                                \
  } while (0)
