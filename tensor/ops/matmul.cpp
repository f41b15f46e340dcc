#include "tensor/ops/matmul.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "tensor/dispatch.h"
#include "tensor/env.h"
#include "tensor/ops/matmul_kernels.h"
#include "tensor/profiler.h"

namespace ember {

// ---- backend and kernel settings ------------------------------------------------------

const char* matmul_backend_name(MatmulBackend backend) {
  switch (backend) {
    case MatmulBackend::automatic: return "auto";
    case MatmulBackend::native: return "native";
    case MatmulBackend::cublas: return "cublas";
  }
  return "?";
}

MatmulBackend parse_matmul_backend(const char* value) {
  return static_cast<MatmulBackend>(parse_env_choice("EMBER_MATMUL", value, {"auto", "native", "cublas"}, 0));
}

static std::atomic<int>& backend_setting() {
  static std::atomic<int> setting{static_cast<int>(parse_matmul_backend(std::getenv("EMBER_MATMUL")))};
  return setting;
}

static std::atomic<bool>& tf32_setting() {
  static std::atomic<bool> setting{parse_env_choice("EMBER_TF32", std::getenv("EMBER_TF32"), {"0", "1"}, 1) == 1};
  return setting;
}

bool allow_tf32() { return tf32_setting().load(); }
void set_allow_tf32(bool on) { tf32_setting().store(on); }

MatmulBackend matmul_backend() { return static_cast<MatmulBackend>(backend_setting().load()); }
void set_matmul_backend(MatmulBackend backend) { backend_setting().store(static_cast<int>(backend)); }

static std::atomic<int>& kernel_setting() {
  static std::atomic<int> setting{[] {
    const char* env = std::getenv("EMBER_MATMUL_KERNEL");
    if (!env || !*env) return kMatmulKernelCount;
    std::string s(env);
    for (int v = 1; v <= kMatmulKernelCount; ++v)
      if (s == std::to_string(v)) return v;
    throw make_error("EMBER_MATMUL_KERNEL='", env, "' is not a matmul kernel (expected 1 to ", kMatmulKernelCount, ")");
  }()};
  return setting;
}

int matmul_kernel() { return kernel_setting().load(); }
void set_matmul_kernel(int version) {
  EMBER_CHECK(version >= 1 && version <= kMatmulKernelCount, "set_matmul_kernel: version ", version,
              " does not exist (expected 1 to ", kMatmulKernelCount, ")");
  kernel_setting().store(version);
}

// ---- planning -------------------------------------------------------------------------

namespace {

// How the kernels can read the last two dims of `t` in place, or nothing when they need a
// copy (e.g. a slice with a column step, or an expanded row).
std::optional<GemmOperand> layout_of(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1), rs = t.stride(-2), cs = t.stride(-1);
  auto row_major = [](int64_t ld) { return GemmOperand{false, ld}; };
  auto col_major = [](int64_t ld) { return GemmOperand{true, ld}; };
  if (rows <= 1 && cols <= 1) return row_major(1);
  if (rows <= 1) {  // one row: the row stride never matters
    if (cs == 1) return row_major(cols);
    if (cs >= 1) return col_major(cs);
    return std::nullopt;
  }
  if (cols <= 1) {  // one column: the column stride never matters
    if (rs == 1) return col_major(rows);
    if (rs >= 1) return row_major(rs);
    return std::nullopt;
  }
  if (cs == 1 && rs >= cols) return row_major(rs);
  if (rs == 1 && cs >= rows) return col_major(cs);
  return std::nullopt;
}

// A matrix operand ready for the kernels: itself when its layout is readable, else a copy.
Tensor readable(const Tensor& t, GemmOperand& layout) {
  if (auto l = layout_of(t)) {
    layout = *l;
    return t;
  }
  Tensor c = t.contiguous();
  layout = *layout_of(c);
  return c;
}

void check_pair(const char* op, const Tensor& a, const Tensor& b, const char* a_name, const char* b_name) {
  EMBER_CHECK(a.defined() && b.defined(), op, ": undefined tensor");
  EMBER_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", a_name, " is ", dtype_name(a.dtype()), ", ", b_name,
              " is ", dtype_name(b.dtype()), "); convert one with .to(dtype)");
  EMBER_CHECK(is_floating(a.dtype()), op, ": dtype ", dtype_name(a.dtype()), " not supported (expected a floating dtype)");
  EMBER_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a_name, " on ", a.device().str(), ", ",
              b_name, " on ", b.device().str(), ")");
}

// out (batch..., M, N) = a (..., M, K) · b (..., K, N) (+ bias (N)), with batch = the
// broadcast of a's and b's leading dims. a and b have at least 2 dims.
Tensor batched_gemm(const char* op, const Tensor& a, const Tensor& b, const Tensor& bias) {
  EMBER_CHECK(!a.device().is_cpu() || a.dtype() == DType::f32 || a.dtype() == DType::f64, op, ": dtype ",
              dtype_name(a.dtype()), " not supported on the CPU (expected f32 or f64; bf16 and f16 run on CUDA)");
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, op);
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = empty(out_shape, a.dtype(), a.device());
  const int64_t count = shape_numel(batch);
  profile_count(2.0 * static_cast<double>(count) * m * n * k,
                static_cast<double>(a.nbytes() + b.nbytes() + out.nbytes()));
  if (out.numel() == 0) return out;
  if (k == 0) {  // an empty sum: zeros, or the bias on every row
    if (bias.defined()) out.copy_(bias);
    else out.zero_();
    return out;
  }

  GemmPlan plan;
  plan.m = m;
  plan.n = n;
  plan.k = k;
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  Tensor ea = readable(a, plan.a).expand(a_full);  // broadcast batch dims get stride 0
  Tensor eb = readable(b, plan.b).expand(b_full);

  // Collapse the batch dims: drop size-1 dims, merge neighbours whose strides chain, so the
  // innermost run becomes one strided batch and only the rest is enumerated.
  struct BatchDim {
    int64_t size, a_stride, b_stride;
  };
  std::vector<BatchDim> dims;
  for (size_t d = 0; d < batch.size(); ++d) {
    if (batch[d] == 1) continue;
    BatchDim cur{batch[d], ea.stride(static_cast<int64_t>(d)), eb.stride(static_cast<int64_t>(d))};
    if (!dims.empty() && dims.back().a_stride == cur.a_stride * cur.size &&
        dims.back().b_stride == cur.b_stride * cur.size) {
      dims.back() = {dims.back().size * cur.size, cur.a_stride, cur.b_stride};
    } else {
      dims.push_back(cur);
    }
  }
  if (!dims.empty()) {
    plan.inner = dims.back().size;
    plan.a_inner_stride = dims.back().a_stride;
    plan.b_inner_stride = dims.back().b_stride;
    dims.pop_back();
  }
  plan.a_outer = {0};
  plan.b_outer = {0};
  // A stack of row-major a matrices lying back to back against one shared b is one tall
  // product (inner·m, k) · (k, n): x (B, N, in) · w (in, out) takes this path.
  if (dims.empty() && plan.inner > 1 && plan.b_inner_stride == 0 && !plan.a.col_major &&
      plan.a_inner_stride == m * plan.a.ld) {
    plan.m *= plan.inner;
    plan.inner = 1;
    plan.a_inner_stride = 0;
  }
  for (const BatchDim& d : dims) {  // outer dims, outermost first: offsets in row-major order
    std::vector<int64_t> na, nb;
    for (size_t j = 0; j < plan.a_outer.size(); ++j)
      for (int64_t i = 0; i < d.size; ++i) {
        na.push_back(plan.a_outer[j] + i * d.a_stride);
        nb.push_back(plan.b_outer[j] + i * d.b_stride);
      }
    plan.a_outer = std::move(na);
    plan.b_outer = std::move(nb);
  }

  Tensor bias_c = bias.defined() ? bias.contiguous() : bias;
  dispatch(op, out.device(),
           [&] { cpu::gemm(plan, out, ea, eb, bias_c); },
           [&] { cuda::gemm(plan, out, ea, eb, bias_c); });
  return out;
}

}  // namespace

// ---- the ops ----------------------------------------------------------------------------

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_pair("matmul", a, b, "a", "b");
  EMBER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands need at least 1 dim, got a ", a.shape_str(), " and b ",
              b.shape_str());
  Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;  // (K) -> (1, K)
  Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;  // (K) -> (K, 1)
  EMBER_CHECK(a2.size(-1) == b2.size(-2), "matmul: inner dimensions differ: a ", a.shape_str(), " has K = ",
              a2.size(-1), " but b ", b.shape_str(), " has K = ", b2.size(-2),
              " (expected a (..., M, K) and b (..., K, N))");
  Tensor out = batched_gemm("matmul", a2, b2, Tensor());
  if (a.dim() == 1) out = out.squeeze(-2);
  if (b.dim() == 1) out = out.squeeze(-1);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_pair("linear", x, w, "x", "weight");
  EMBER_CHECK(w.dim() == 2, "linear: weight must be (out, in), got ", w.shape_str());
  EMBER_CHECK(x.dim() >= 1, "linear: x must have at least 1 dim (..., in), got ", x.shape_str());
  const int64_t in = w.size(1), out_features = w.size(0);
  EMBER_CHECK(x.size(-1) == in, "linear: x ", x.shape_str(), " has ", x.size(-1), " features but weight ",
              w.shape_str(), " expects ", in, " (x (..., in), weight (out, in))");
  if (bias.defined()) {
    check_pair("linear", x, bias, "x", "bias");
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == out_features, "linear: bias must be (", out_features,
                ") for weight ", w.shape_str(), ", got ", bias.shape_str());
  }
  // Rows of x as one matrix (a view unless x's layout forbids it); weight.t() is read in place.
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor x2 = x.dim() == 2 ? x : x.reshape({rows, in});
  Tensor y = batched_gemm("linear", x2, w.t(), bias);  // (rows, out)
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(out_features);
  return y.view(out_shape);
}

}  // namespace ember
