// The math of clamp and its gradient, once, for the CPU and CUDA loops.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/convert.h"
#include "tensor/ops/clamp.h"

namespace ember {

// lo and hi already in the compute type (acc_t<T> for floats, T's range for integers).
template <class T>
struct ClampFunctor {
  using A = acc_t<T>;
  A lo, hi;
  EMBER_HD T operator()(T xv) const {
    A x = static_cast<A>(xv);
    x = x < lo ? lo : x;  // NaN fails both tests and passes through
    x = x > hi ? hi : x;
    return convert<T>(x);
  }
};

// Bounds in T's compute type: floats round them (±inf stays ±inf); integers take the
// integers inside [lo, hi], saturated to T's range.
template <class T>
ClampFunctor<T> make_clamp_functor(double lo, double hi) {
  using A = acc_t<T>;
  if constexpr (std::is_integral_v<T>) {
    const double tmin = static_cast<double>(std::numeric_limits<T>::lowest());
    const double tmax = static_cast<double>(std::numeric_limits<T>::max());
    auto to_int = [&](double v) { return v <= tmin ? std::numeric_limits<T>::lowest()
                                       : v >= tmax ? std::numeric_limits<T>::max() : static_cast<T>(v); };
    return {to_int(std::ceil(lo)), to_int(std::floor(hi))};
  } else {
    return {static_cast<A>(lo), static_cast<A>(hi)};
  }
}

template <class T>
struct ClampBackwardFunctor {
  using A = acc_t<T>;
  A lo, hi;
  EMBER_HD T operator()(T g, T xv) const {
    A x = static_cast<A>(xv);
    return lo <= x && x <= hi ? g : convert<T>(A(0));
  }
};

}  // namespace ember
