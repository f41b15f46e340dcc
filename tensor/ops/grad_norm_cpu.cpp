#include <cmath>

#include "tensor/convert.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops/grad_norm_kernels.h"

namespace ember::cpu {

namespace {

struct Chunk {
  void* ptr;
  int64_t n;
  DType dtype;
};

std::vector<Chunk> chunks_of(const std::vector<Tensor>& tensors) {
  std::vector<Chunk> out;
  for (const Tensor& t : tensors) {
    char* base = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kNormChunk)
      out.push_back({base + off * static_cast<int64_t>(t.itemsize()), std::min(kNormChunk, t.numel() - off), t.dtype()});
  }
  return out;
}

template <class T>
double chunk_sum_of_squares(const T* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = convert<double>(p[i]);
    s += v * v;
  }
  return s;
}

template <class T>
void chunk_scale(T* p, int64_t n, double coef) {
  using A = acc_t<T>;
  const A c = convert<A>(convert<T>(coef));  // the factor in the tensor's dtype, as mul_ would use it
  for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(convert<A>(p[i]) * c);
}

}  // namespace

void sum_of_squares(const std::vector<Tensor>& tensors, const Tensor& out) {
  const std::vector<Chunk> chunks = chunks_of(tensors);
  std::vector<double> partial(chunks.size());
  parallel_for(static_cast<int64_t>(chunks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const Chunk& c = chunks[k];
      partial[k] = dispatch_all_float(c.dtype, "sum_of_squares", [&](auto tag) {
        using T = decltype(tag);
        return chunk_sum_of_squares(static_cast<const T*>(c.ptr), c.n);
      });
    }
  });
  double s = 0;
  for (double p : partial) s += p;  // in order: the same sum for any thread count
  *out.data<double>() = s;
}

void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& sum_sq, double max_norm) {
  const double ss = *sum_sq.data<double>();
  if (!std::isfinite(ss)) return;
  const double coef = max_norm / (std::sqrt(ss) + 1e-6);
  if (!(coef < 1.0)) return;
  const std::vector<Chunk> chunks = chunks_of(tensors);
  parallel_for(static_cast<int64_t>(chunks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const Chunk& c = chunks[k];
      dispatch_all_float(c.dtype, "clip_by_norm_", [&](auto tag) {
        using T = decltype(tag);
        chunk_scale(static_cast<T*>(c.ptr), c.n, coef);
      });
    }
  });
}

}  // namespace ember::cpu
