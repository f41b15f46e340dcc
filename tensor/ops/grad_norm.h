// Norms over many tensors at once, for gradient clipping (optim/clip.h): one pass over all of
// them, the result left on their device, so that clipping needs no host read.
//
//   sum_of_squares(ts)           Σ_t Σ_i t_i², accumulated in double: a 0-dim f64 tensor on the
//                                tensors' device (0 on the CPU for an empty list)
//   clip_by_norm_(ts, ss, max)   every t scaled in place by c = max / (√ss + 1e-6) when ss is finite
//                                and c < 1 (PyTorch's clip_grad_norm_ coefficient); left alone
//                                otherwise. ss: sum_of_squares' result, read where it lives.
//
// Every tensor is cut into chunks of kChunk elements. On the CPU each chunk is summed in order
// and the chunks' sums are added in order, in double; on CUDA one block sums a chunk (a tree in
// double) and a last one-block kernel adds the chunks' sums in order: both are deterministic,
// whatever the thread count. CUDA launches one kernel per kChunksPerLaunch chunks (the chunk
// table travels in the launch's arguments, so nothing is uploaded), plus that last one.
// The tensors: defined, on one device, floating (f32, f64, bf16, f16; several dtypes may mix);
// non-contiguous ones are read through a contiguous copy (and, for clip_by_norm_, written back).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace ember {

inline constexpr int64_t kNormChunk = 1 << 16;  // elements per chunk

Tensor sum_of_squares(const std::vector<Tensor>& tensors);
void clip_by_norm_(const std::vector<Tensor>& tensors, const Tensor& sum_sq, double max_norm);

}  // namespace ember
