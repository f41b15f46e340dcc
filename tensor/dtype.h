// Element types. Every tensor has exactly one; ops say which they accept.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/error.h"
#include "tensor/half.h"

namespace ember {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, boolean };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
    case DType::boolean: return 1;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
    case DType::boolean: return "bool";
  }
  return "?";
}

constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}

DType dtype_from_name(const std::string& name);  // "f32", "float32", "bf16", ... or throws

// The C++ type stored for each dtype, and back.
template <DType D> struct dtype_cpp;
template <> struct dtype_cpp<DType::f32> { using type = float; };
template <> struct dtype_cpp<DType::f64> { using type = double; };
template <> struct dtype_cpp<DType::bf16> { using type = ember::bf16; };
template <> struct dtype_cpp<DType::f16> { using type = ember::f16; };
template <> struct dtype_cpp<DType::i32> { using type = int32_t; };
template <> struct dtype_cpp<DType::i64> { using type = int64_t; };
template <> struct dtype_cpp<DType::u8> { using type = uint8_t; };
template <> struct dtype_cpp<DType::boolean> { using type = bool; };

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<ember::bf16>() { return DType::bf16; }
template <> constexpr DType dtype_of<ember::f16>() { return DType::f16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<bool>() { return DType::boolean; }

// The type a kernel computes in: float for the 16-bit types, the type itself otherwise.
template <class T> struct acc_type { using type = T; };
template <> struct acc_type<ember::bf16> { using type = float; };
template <> struct acc_type<ember::f16> { using type = float; };
template <class T> using acc_t = typename acc_type<T>::type;

// Dispatch: calls fn(T{}) with T the C++ type of `t`, for the listed family of dtypes;
// any other dtype throws an Error naming `op`. Works in host code of .cpp and .cu files.
//   dispatch_float(x.dtype(), "relu", [&](auto tag) { using T = decltype(tag); ... });
template <class Fn>
decltype(auto) dispatch_float(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    default: throw make_error(op, ": dtype ", dtype_name(t), " not supported (expected f32 or f64)");
  }
}
// f32, f64, bf16, f16 (the 16-bit types compute in float).
template <class Fn>
decltype(auto) dispatch_all_float(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(ember::bf16{});
    case DType::f16: return fn(ember::f16{});
    default: throw make_error(op, ": dtype ", dtype_name(t), " not supported (expected a floating dtype)");
  }
}
// Every dtype.
template <class Fn>
decltype(auto) dispatch_all(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(ember::bf16{});
    case DType::f16: return fn(ember::f16{});
    case DType::i32: return fn(int32_t{});
    case DType::i64: return fn(int64_t{});
    case DType::u8: return fn(uint8_t{});
    case DType::boolean: return fn(bool{});
  }
  throw make_error(op, ": unknown dtype");
}
// Numeric (all but bool).
template <class Fn>
decltype(auto) dispatch_numeric(DType t, const char* op, Fn&& fn) {
  if (t == DType::boolean) throw make_error(op, ": dtype bool not supported (expected a numeric dtype)");
  return dispatch_all(t, op, std::forward<Fn>(fn));
}

}  // namespace ember
