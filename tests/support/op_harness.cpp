#include "tests/support/op_harness.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace ember::testing {

namespace {

struct Bound {
  double rtol, atol;
};

// A result may differ from the float64 reference by its own rounding and a few ulps of
// accumulation: 8 significant bits for bf16, 11 for f16, 24 for f32.
Bound bound_for(DType d) {
  switch (d) {
    case DType::f64: return {1e-10, 1e-12};
    case DType::bf16: return {1.6e-2, 2e-3};
    case DType::f16: return {4e-3, 5e-4};
    default: return {2e-5, 2e-6};
  }
}

std::string where_str(const OpCase& c, DType dtype, Device device) {
  return c.name + " " + dtype_name(dtype) + " on " + device.str();
}

// The stored inputs (before broadcast views), on `device`, in `dtype` for value args.
std::vector<Tensor> make_inputs(const std::vector<Arg>& args, DType dtype, Device device, uint64_t seed) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg& a = args[i];
    const uint64_t s = seed + 17 * i;
    Tensor t;
    if (a.kind == Arg::mask) {
      t = gt(random_tensor(a.shape, DType::f64, -1, 1, s), 0.0);
    } else if (a.kind == Arg::index) {
      Generator gen(s);
      t = randint(0, a.classes, a.shape, DType::i64, Device::cpu(), &gen);
    } else if (a.integers) {
      std::vector<double> v = values(random_tensor(a.shape, DType::f64, a.lo, a.hi + 1, s));
      for (double& e : v) e = std::floor(e);
      t = from_vector<double>(v, a.shape).to(dtype);
    } else {
      t = random_tensor(a.shape, DType::f64, a.lo, a.hi, s).to(dtype);
    }
    t = t.to(device);
    if (a.layout == Layout::strided) t = non_contiguous(t);
    out.push_back(t);
  }
  return out;
}

// Leaves for the stored inputs (value args that the gradient check differentiates need grad),
// then the op's operands: broadcast args expanded by autograd, so a gradient reaches the stored
// tensor summed over the broadcast dims.
std::vector<Variable> leaves(const std::vector<Arg>& args, const std::vector<Tensor>& inputs, bool with_grad) {
  std::vector<Variable> v;
  for (size_t i = 0; i < args.size(); ++i)
    v.emplace_back(inputs[i], with_grad && args[i].kind == Arg::value && args[i].grad);
  return v;
}
std::vector<Variable> operands(const std::vector<Arg>& args, const std::vector<Variable>& stored) {
  std::vector<Variable> v;
  for (size_t i = 0; i < args.size(); ++i)
    v.push_back(args[i].layout == Layout::broadcast ? expand(stored[i], args[i].expand_to) : stored[i]);
  return v;
}

std::vector<RefTensor> reference_inputs(const std::vector<Arg>& args, const std::vector<Tensor>& inputs) {
  std::vector<RefTensor> r;
  for (size_t i = 0; i < args.size(); ++i)
    r.push_back(ref_of(args[i].layout == Layout::broadcast ? inputs[i].expand(args[i].expand_to) : inputs[i]));
  return r;
}

void check_forward(const OpCase& c, DType dtype, Device device) {
  SCOPED_TRACE(where_str(c, dtype, device));
  std::vector<Tensor> inputs = make_inputs(c.args, dtype, device, 1000);
  RefTensor want = c.ref(reference_inputs(c.args, inputs));
  Tensor got;
  {
    NoGradGuard no_grad;
    got = c.fn(operands(c.args, leaves(c.args, inputs, false))).data();
  }
  ASSERT_TRUE(got.defined());
  EXPECT_EQ(got.device(), device);
  ASSERT_EQ(got.shape(), want.shape);
  Bound b = bound_for(dtype);
  if (c.atol > 0) b = {0, c.atol / c.tol};
  EXPECT_TRUE(all_close(got.cpu(), want.v, b.rtol * c.tol, b.atol * c.tol));
}

// Float64 gradients of Σ fn(x)·R on `device`.
std::vector<Tensor> gradients(const OpCase& c, Device device) {
  std::vector<Tensor> inputs = make_inputs(c.args, DType::f64, device, 2000);
  std::vector<Variable> stored = leaves(c.args, inputs, true);
  Variable out = c.fn(operands(c.args, stored));
  out.backward(random_tensor(out.shape(), DType::f64, -1, 1, 3000, device));
  std::vector<Tensor> g;
  for (const Variable& v : stored) g.push_back(v.requires_grad() && v.grad().defined() ? v.grad().cpu() : Tensor());
  return g;
}

void check_gradients(const OpCase& c, Device device) {
  SCOPED_TRACE(c.name + " gradients on " + device.str());
  if (device.is_cpu()) {
    std::vector<Tensor> inputs = make_inputs(c.args, DType::f64, device, 2000);
    std::vector<Variable> stored = leaves(c.args, inputs, true);
    const std::vector<Arg>& args = c.args;
    auto fn = [&](const std::vector<Variable>& s) { return c.fn(operands(args, s)); };
    EXPECT_TRUE(gradcheck(fn, stored, 1e-6, 1e-4 * c.tol, 1e-6 * c.tol));
    return;
  }
  // CUDA: the same gradients as the CPU's (which gradcheck has checked)
  std::vector<Tensor> want = gradients(c, Device::cpu()), got = gradients(c, device);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("argument " + std::to_string(i));
    ASSERT_EQ(want[i].defined(), got[i].defined());
    if (want[i].defined()) {
      EXPECT_TRUE(all_close(got[i], want[i], 1e-9, 1e-11));
    }
  }
}

}  // namespace

RefTensor ref_of(const Tensor& t) {
  RefTensor r;
  r.shape = t.shape();
  r.v = values(t);
  return r;
}

void run_case(const OpCase& c, Device device) {
  if (device.is_cuda() && !cuda::is_available())
    GTEST_SKIP() << "CUDA case skipped: " << cuda::unavailable_reason();
  for (DType dtype : c.dtypes) check_forward(c, dtype, device);
  if (c.grad) check_gradients(c, device);
}

void run_perf(const std::vector<OpCase>& cases, int iterations) {
  std::vector<Device> devices{Device::cpu()};
  if (cuda::is_available()) devices.push_back(Device::cuda(0));
  else std::printf("(CUDA: %s; CPU only)\n", cuda::unavailable_reason().c_str());
  std::printf("%-44s %-7s %10s %10s %9s\n", "case (f32)", "backend", "us/call", "GFLOP/s", "GB/s");
  for (const OpCase& c : cases) {
    const std::vector<Arg>& args = c.perf_args.empty() ? c.args : c.perf_args;
    for (Device device : devices) {
      std::vector<Tensor> inputs = make_inputs(args, DType::f32, device, 4000);
      NoGradGuard no_grad;
      std::vector<Variable> ops = operands(args, leaves(args, inputs, false));
      Tensor out = c.fn(ops).data();  // warm-up (caches, allocator)
      if (device.is_cuda()) cuda::synchronize();
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iterations; ++i) out = c.fn(ops).data();
      if (device.is_cuda()) cuda::synchronize();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iterations;
      double bytes = static_cast<double>(out.nbytes());
      for (const Tensor& t : inputs) bytes += static_cast<double>(t.nbytes());  // a broadcast input is read once
      std::vector<Shape> shapes;
      for (const Variable& v : ops) shapes.push_back(v.shape());
      double flops = c.flops ? c.flops(shapes) : 0.0;
      std::printf("%-44s %-7s %10.1f %10s %9.2f\n", c.name.c_str(), device.str().c_str(), s * 1e6,
                  flops > 0 ? std::to_string(static_cast<int>(flops / s * 1e-9 + 0.5)).c_str() : "-", bytes / s * 1e-9);
    }
  }
}

}  // namespace ember::testing
