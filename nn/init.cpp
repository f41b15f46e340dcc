#include "nn/init.h"

#include <algorithm>
#include <cmath>

namespace ember::nn::init {

int64_t fan_in(const Shape& w) {
  EMBER_CHECK(w.size() >= 2, "init: weight of shape ", shape_str(w), " has no fan-in (expected 2+ dims)");
  int64_t f = w[1];
  for (size_t i = 2; i < w.size(); ++i) f *= w[i];
  return f;
}

int64_t fan_out(const Shape& w, int64_t groups) {
  EMBER_CHECK(w.size() >= 2, "init: weight of shape ", shape_str(w), " has no fan-out (expected 2+ dims)");
  int64_t f = w[0];
  for (size_t i = 2; i < w.size(); ++i) f *= w[i];
  return f / groups;
}

void trunc_normal_(Tensor& t, double std, double a, double b, Generator* gen) {
  // Rejection sampling on the host: redraw the out-of-range values until none is left.
  Tensor host = normal(t.shape(), 0.0, std, DType::f64, Device::cpu(), gen);
  double* v = host.data<double>();
  for (int round = 0; round < 64; ++round) {
    int64_t bad = 0;
    for (int64_t i = 0; i < host.numel(); ++i) bad += (v[i] < a || v[i] > b);
    if (bad == 0) break;
    Tensor redraw = normal({bad}, 0.0, std, DType::f64, Device::cpu(), gen);
    const double* r = redraw.data<double>();
    int64_t k = 0;
    for (int64_t i = 0; i < host.numel(); ++i)
      if (v[i] < a || v[i] > b) v[i] = r[k++];
  }
  for (int64_t i = 0; i < host.numel(); ++i) v[i] = std::clamp(v[i], a, b);
  t.copy_(host);
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  t.copy_(normal(t.shape(), mean, std, DType::f64, Device::cpu(), gen));
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  t.copy_(uniform(t.shape(), low, high, DType::f64, Device::cpu(), gen));
}

void zeros_(Tensor& t) { t.fill_(0.0); }
void ones_(Tensor& t) { t.fill_(1.0); }

void torch_default_(Tensor& weight, Tensor* bias, Generator* gen) {
  double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight.shape())));
  uniform_(weight, -bound, bound, gen);
  if (bias && bias->defined()) uniform_(*bias, -bound, bound, gen);
}

}  // namespace ember::nn::init
