#include <cstring>

#include "tensor/convert.h"
#include "tensor/cpu/loops.h"
#include "tensor/ops/copy_kernels.h"

namespace ember::cpu {

void copy_strided(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    std::memcpy(dst.data_ptr(), src.data_ptr(), dst.nbytes());
    return;
  }
  dispatch_all(dst.dtype(), "copy", [&](auto to_tag) {
    using To = decltype(to_tag);
    dispatch_all(src.dtype(), "copy", [&](auto from_tag) {
      using From = decltype(from_tag);
      map<To, From>(dst, src, [](From v) { return convert<To>(v); });
    });
  });
}

void fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    const T v = convert<T>(value);
    EMBER_CHECK(dst.dim() <= 16, "fill: at most 16 dims, got ", dst.dim());
    // Writes only: the destination may be fresh storage, and reading an uninitialised bool (any
    // byte but 0 or 1) is undefined behaviour.
    for_each_run<1>(dst.shape(), {dst.strides()}, {static_cast<char*>(dst.data_ptr())}, {sizeof(T)},
                    [v](const std::array<char*, 1>& p, int64_t n, const std::array<int64_t, 1>& s) {
                      T* o = reinterpret_cast<T*>(p[0]);
                      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = v;
                    });
  });
}

}  // namespace ember::cpu
