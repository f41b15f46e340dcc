// convert<To>(from): the element conversion used by to(dtype) and copies, host and device.
// Floating to integer truncates toward zero and saturates: values below the integer type's range
// give its minimum, values above give its maximum, NaN gives 0 (so 300.0 → u8 255, -1.5 → u8 0,
// 1e20 → i32 2147483647; a plain cast of an out-of-range float is undefined behaviour in C++ and
// differs between CPU and GPU). Anything to bool is "!= 0".
#pragma once
#include <limits>
#include <type_traits>

#include "tensor/dtype.h"
#include "tensor/half.h"

namespace ember {

template <class To, class From>
EMBER_HD To convert(From v) {
  using A = acc_t<From>;
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<A>(v) != A(0);
  } else if constexpr (std::is_same_v<To, ember::bf16> || std::is_same_v<To, ember::f16>) {
    return To(static_cast<float>(static_cast<A>(v)));
  } else if constexpr (std::is_integral_v<To> && !std::is_integral_v<A>) {
    const A x = static_cast<A>(v);
    constexpr To lo = std::numeric_limits<To>::lowest(), hi = std::numeric_limits<To>::max();
    if (!(x == x)) return To(0);  // NaN
    if (x <= static_cast<A>(lo)) return lo;
    if (x >= static_cast<A>(hi)) return hi;  // hi rounds up to a power of two in A: anything below it fits
    return static_cast<To>(x);
  } else {
    return static_cast<To>(static_cast<A>(v));
  }
}

}  // namespace ember
