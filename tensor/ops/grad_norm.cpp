#include "tensor/ops/grad_norm.h"

#include "tensor/dispatch.h"
#include "tensor/ops/copy.h"
#include "tensor/ops/grad_norm_kernels.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

// The device of the tensors (checked to be one) and the non-empty ones, contiguous.
Device check_tensors(const char* op, const std::vector<Tensor>& tensors, std::vector<Tensor>& contiguous) {
  Device device = Device::cpu();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    EMBER_CHECK(t.defined(), op, ": tensor ", i, " is undefined");
    EMBER_CHECK(is_floating(t.dtype()), op, ": tensor ", i, " has dtype ", dtype_name(t.dtype()),
                " (expected a floating dtype)");
    if (i == 0) device = t.device();
    EMBER_CHECK(t.device() == device, op, ": tensor ", i, " is on ", t.device().str(), " but tensor 0 on ",
                device.str(), " (group the tensors by device)");
    if (t.numel() > 0) contiguous.push_back(t.contiguous());
  }
  return device;
}

double total_bytes(const std::vector<Tensor>& ts) {
  double b = 0;
  for (const Tensor& t : ts) b += static_cast<double>(t.nbytes());
  return b;
}

}  // namespace

Tensor sum_of_squares(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> ts;
  const Device device = check_tensors("sum_of_squares", tensors, ts);
  Tensor out = zeros({}, DType::f64, device);
  if (ts.empty()) return out;
  profile_count(2.0 * total_bytes(ts) / 4, total_bytes(ts));
  dispatch("sum_of_squares", device,
           [&] { cpu::sum_of_squares(ts, out); },
           [&] { cuda::sum_of_squares(ts, out); });
  return out;
}

void clip_by_norm_(const std::vector<Tensor>& tensors, const Tensor& sum_sq, double max_norm) {
  EMBER_CHECK(max_norm > 0, "clip_by_norm_: max_norm ", max_norm, " must be > 0");
  std::vector<Tensor> ts;
  const Device device = check_tensors("clip_by_norm_", tensors, ts);
  if (ts.empty()) return;
  EMBER_CHECK(sum_sq.defined() && sum_sq.numel() == 1 && sum_sq.dtype() == DType::f64 && sum_sq.device() == device,
              "clip_by_norm_: sum_sq must be one f64 value on ", device.str(), " (sum_of_squares' result), got ",
              sum_sq.defined() ? sum_sq.str() : "undefined");
  const Tensor ss = sum_sq.contiguous();
  profile_count(total_bytes(ts) / 4, 2.0 * total_bytes(ts));
  dispatch("clip_by_norm_", device,
           [&] { cpu::clip_by_norm(ts, ss, max_norm); },
           [&] { cuda::clip_by_norm(ts, ss, max_norm); });
  // The non-contiguous ones were scaled in a copy: write them back.
  size_t k = 0;
  for (const Tensor& t : tensors) {
    if (t.numel() == 0) continue;
    if (!t.is_contiguous()) copy_into(t, ts[k]);
    ++k;
  }
}

}  // namespace ember
