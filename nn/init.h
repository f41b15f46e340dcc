// Weight initialisation, as the reference implementations (timm) do it. All draws come from an
// ember::Generator, so a model built with the same seed has the same weights on every device.
#pragma once
#include "tensor/ops/random.h"
#include "tensor/tensor.h"

namespace ember::nn::init {

// N(0, std²) truncated to [a, b] (timm's trunc_normal_: a = -2, b = 2 in absolute units).
void trunc_normal_(Tensor& t, double std, double a = -2.0, double b = 2.0, Generator* gen = nullptr);
void normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// PyTorch's default for Conv2d/Linear: kaiming_uniform(a=√5) → U(±1/√fan_in) for weight and bias.
void torch_default_(Tensor& weight, Tensor* bias, Generator* gen = nullptr);
// fan_in / fan_out of a (out, in, kh, kw) or (out, in) weight; groups divides fan_out like timm.
int64_t fan_in(const Shape& w);
int64_t fan_out(const Shape& w, int64_t groups = 1);

}  // namespace ember::nn::init
