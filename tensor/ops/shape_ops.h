// Joining, splitting and padding tensors. Device-agnostic: written with copy_into into
// narrow() views of the output, so they run wherever copy runs. Dims may be negative.
//
//   cat(ts, d):    y = [t_0 | t_1 | ...] along d; all t_i agree on every other dim.
//                  dL/dt_i = g.narrow(d, offset_i, size_i)
//   stack(ts, d):  y = cat(unsqueeze(t_i, d)), a new dim d of size len(ts);
//                  dL/dt_i = g.select(d, i)
//   split(x, s, d) -> views of length s along d (the last may be shorter);
//   split(x, {s_0, s_1, ...}, d) -> views of those lengths (they must sum to x.size(d));
//   chunk(x, k, d) -> split(x, ceil(x.size(d) / k), d): at most k views, as in PyTorch.
//   pad(x, pads, v): pads in PyTorch order — (left, right) for the last dim first, then the
//                  one before it, ...; negative pads crop. New elements are v.
//                  y[i + left] = x[i];  dL/dx = pad(g, -pads) (crop back, zero where x was cropped).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace ember {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// Views of x (no copy).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);

// The lengths split / chunk cut x.size(dim) into (shared with the autograd versions).
std::vector<int64_t> split_sizes(int64_t dim_size, int64_t split_size, const char* op);
std::vector<int64_t> chunk_sizes(int64_t dim_size, int64_t chunks);
// pad's output shape, checking the pads (shared with the autograd version).
Shape padded_shape(const Shape& shape, const std::vector<int64_t>& pads);

}  // namespace ember
