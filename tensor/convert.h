// convert<To>(from): the element conversion used by to(dtype) and copies, host and device.
// Floating to integer truncates toward zero; anything to bool is "!= 0".
#pragma once
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
  } else {
    return static_cast<To>(static_cast<A>(v));
  }
}

}  // namespace ember
