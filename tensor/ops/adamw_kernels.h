// adamw_update's kernels (adamw_cpu.cpp, adamw_cuda.cu), chosen by adamw.cpp. Operands are
// contiguous, of one shape and dtype; the step's scalars come precomputed (adamw.h).
#pragma once
#include "tensor/ops/adamw.h"

namespace ember::cpu {
void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWCoefficients& c);
}
namespace ember::cuda {
void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWCoefficients& c);
// Every tensor i in one launch per dtype; all on the current device, checked, non-empty.
void adamw_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                        const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                        const std::vector<AdamWCoefficients>& c);
}
