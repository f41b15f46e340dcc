// sgd_update's kernels (sgd_cpu.cpp, sgd_cuda.cu), chosen by sgd.cpp. Operands are contiguous,
// of one shape and dtype; momentum_buffer is read only when s.momentum ≠ 0.
#pragma once
#include "tensor/ops/sgd.h"

namespace ember::cpu {
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s);
}
namespace ember::cuda {
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s);
// Every tensor i in one launch per dtype; all on the current device, checked, non-empty.
void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_buffers, const std::vector<SGDStep>& steps);
}
