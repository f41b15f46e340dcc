// cross_entropy's kernels (cross_entropy_cpu.cpp, cross_entropy_cuda.cu), chosen by cross_entropy.cpp.
#pragma once
#include "tensor/ops/cross_entropy.h"

namespace ember {
// "cross_entropy: target class id 7 (row 1) is out of range for 5 classes (expected 0 to 4)"
std::string cross_entropy_bad_id_message(int64_t id, int64_t row, int64_t classes);
}  // namespace ember

namespace ember::cpu {
// row_loss, lse: (N,) contiguous, accumulation dtype. Returns the first row whose class id is out
// of range (computing nothing), or -1.
int64_t cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const Tensor& row_loss, const Tensor& lse);
// scale: (N,) g_n in the accumulation dtype (any stride); dx: (N, C) contiguous.
void cross_entropy_backward(const Tensor& scale, const Tensor& logits, const Tensor& target, const Tensor& lse,
                            double label_smoothing, const Tensor& dx);
}  // namespace ember::cpu
namespace ember::cuda {
// Checks the class ids without waiting for the kernel (cuda::defer_check) and returns -1.
int64_t cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const Tensor& row_loss, const Tensor& lse);
void cross_entropy_backward(const Tensor& scale, const Tensor& logits, const Tensor& target, const Tensor& lse,
                            double label_smoothing, const Tensor& dx);
}  // namespace ember::cuda
