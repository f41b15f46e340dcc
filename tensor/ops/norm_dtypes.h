// The dtypes the normalisation ops (batch_norm, layer_norm) take, in one place: x in f32 or f64
// anywhere, bf16 or f16 on CUDA (arithmetic in f32 there); their per-channel / per-row tensors
// (mean, rstd, weight, bias and their gradients) in f32 for 16-bit x, else in x's dtype.
#pragma once
#include "tensor/tensor.h"

namespace ember::norm_dtypes {

inline void check_x(const char* op, const Tensor& x) {
  const DType t = x.dtype();
  EMBER_CHECK(t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16, op, ": x has dtype ",
              dtype_name(t), ", expected f32, f64, bf16 or f16");
  EMBER_CHECK(x.device().is_cuda() || t == DType::f32 || t == DType::f64, op, ": x has dtype ", dtype_name(t),
              " on the CPU, where f32 and f64 run (bf16 and f16 run on CUDA)");
}

inline DType stat(const Tensor& x) { return x.dtype() == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace ember::norm_dtypes
