#include "tensor/ops/shape_ops.h"

#include <algorithm>

#include "tensor/ops/copy.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

void check_list(const char* op, const std::vector<Tensor>& ts) {
  EMBER_CHECK(!ts.empty(), op, ": expected at least one tensor, got an empty list");
  for (size_t i = 0; i < ts.size(); ++i) {
    EMBER_CHECK(ts[i].defined(), op, ": tensor ", i, " is undefined");
    EMBER_CHECK(ts[i].dtype() == ts[0].dtype(), op, ": tensor ", i, " has dtype ", dtype_name(ts[i].dtype()),
                " but tensor 0 has ", dtype_name(ts[0].dtype()), "; convert with .to(dtype)");
    EMBER_CHECK(ts[i].device() == ts[0].device(), op, ": tensor ", i, " is on ", ts[i].device().str(),
                " but tensor 0 is on ", ts[0].device().str());
  }
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  check_list("cat", tensors);
  const Tensor& ref = tensors[0];
  EMBER_CHECK(ref.dim() >= 1, "cat: tensor 0 is a scalar; cat joins tensors of at least one dim (use stack)");
  const int64_t d = normalize_dim(dim, ref.dim(), "cat");
  Shape out_shape = ref.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    EMBER_CHECK(t.dim() == ref.dim(), "cat: tensor ", i, " has ", t.dim(), " dims (shape ", t.shape_str(),
                ") but tensor 0 has ", ref.dim(), " (shape ", ref.shape_str(), ")");
    for (int64_t k = 0; k < ref.dim(); ++k)
      EMBER_CHECK(k == d || t.size(k) == ref.size(k), "cat: tensor ", i, " has shape ", t.shape_str(),
                  " but tensor 0 has ", ref.shape_str(), "; they must match in every dim but ", d, " (dim ", k, ": ",
                  t.size(k), " vs ", ref.size(k), ")");
    out_shape[d] += t.size(d);
  }
  Tensor out = empty(out_shape, ref.dtype(), ref.device());
  profile_count(0.0, static_cast<double>(2 * out.nbytes()));
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.size(d) > 0) copy_into(out.narrow(d, offset, t.size(d)), t);
    offset += t.size(d);
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  check_list("stack", tensors);
  const Tensor& ref = tensors[0];
  const int64_t d = normalize_dim(dim, ref.dim() + 1, "stack");
  std::vector<Tensor> expanded;
  expanded.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].shape() == ref.shape(), "stack: tensor ", i, " has shape ", tensors[i].shape_str(),
                " but tensor 0 has ", ref.shape_str(), "; stack needs equal shapes");
    expanded.push_back(tensors[i].unsqueeze(d));
  }
  return cat(expanded, d);
}

std::vector<int64_t> split_sizes(int64_t dim_size, int64_t split_size, const char* op) {
  EMBER_CHECK(split_size > 0, op, ": split size must be positive, got ", split_size);
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < dim_size; start += split_size) sizes.push_back(std::min(split_size, dim_size - start));
  if (sizes.empty()) sizes.push_back(0);  // an empty dim gives one empty piece
  return sizes;
}

std::vector<int64_t> chunk_sizes(int64_t dim_size, int64_t chunks) {
  EMBER_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  return split_sizes(dim_size, std::max<int64_t>(1, (dim_size + chunks - 1) / chunks), "chunk");
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  EMBER_CHECK(x.defined(), "split: undefined tensor");
  EMBER_CHECK(x.dim() >= 1, "split: x is a scalar, expected at least one dim");
  const int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, "split: negative size in ", shape_str(sizes));
    total += s;
  }
  EMBER_CHECK(total == x.size(d), "split: sizes ", shape_str(sizes), " sum to ", total, " but dim ", d, " of x ",
              x.shape_str(), " has size ", x.size(d));
  std::vector<Tensor> pieces;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(d, offset, s));
    offset += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  EMBER_CHECK(x.defined() && x.dim() >= 1, "split: expected a tensor of at least one dim");
  return split(x, split_sizes(x.size(normalize_dim(dim, x.dim(), "split")), split_size, "split"), dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  EMBER_CHECK(x.defined() && x.dim() >= 1, "chunk: expected a tensor of at least one dim");
  return split(x, chunk_sizes(x.size(normalize_dim(dim, x.dim(), "chunk")), chunks), dim);
}

Shape padded_shape(const Shape& shape, const std::vector<int64_t>& pads) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  EMBER_CHECK(pads.size() % 2 == 0, "pad: pads ", shape_str(pads),
              " must come in (left, right) pairs, got an odd count ", pads.size());
  EMBER_CHECK(static_cast<int64_t>(pads.size()) <= 2 * nd, "pad: ", pads.size() / 2, " (left, right) pairs for a tensor of ",
              nd, " dims ", shape_str(shape));
  Shape out = shape;
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    int64_t d = nd - 1 - static_cast<int64_t>(k);
    out[d] = shape[d] + pads[2 * k] + pads[2 * k + 1];
    EMBER_CHECK(out[d] >= 0, "pad: dim ", d, " of size ", shape[d], " with pads (", pads[2 * k], ", ",
                pads[2 * k + 1], ") would have negative size ", out[d]);
  }
  return out;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  EMBER_CHECK(x.defined(), "pad: undefined tensor");
  Tensor out = full(padded_shape(x.shape(), pads), value, x.dtype(), x.device());
  profile_count(0.0, static_cast<double>(x.nbytes() + out.nbytes()));
  // The part of x that survives the crops, and where it lands in out.
  Tensor src = x, dst = out;
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    int64_t d = x.dim() - 1 - static_cast<int64_t>(k);
    int64_t left = pads[2 * k], right = pads[2 * k + 1];
    int64_t crop_left = std::max<int64_t>(0, -left), crop_right = std::max<int64_t>(0, -right);
    int64_t kept = x.size(d) - crop_left - crop_right;
    if (kept <= 0) return out;  // x cropped away entirely
    src = src.narrow(d, crop_left, kept);
    dst = dst.narrow(d, std::max<int64_t>(0, left), kept);
  }
  if (src.numel() > 0) copy_into(dst, src);
  return out;
}

}  // namespace ember
