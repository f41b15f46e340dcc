#include <cstring>

#include "tensor/convert.h"
#include "tensor/cpu/loops.h"
#include "tensor/ops/copy.h"

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
    map<T, T>(dst, dst, [v](T) { return v; });
  });
}

}  // namespace ember::cpu
