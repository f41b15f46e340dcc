// Per-thread scratch memory kept between calls: a kernel's temporary operands (packed GEMM
// panels, gathered 1×1-conv columns) are megabytes, and allocating and zeroing them on every call
// costs as much as the work. Slot s is this thread's s-th buffer, 64-byte aligned, grown on
// demand and never shrunk; its contents are undefined. Give every caller its own slots, so that
// a function using some never overwrites its caller's.
#pragma once
#include <cstdint>
#include <memory>

namespace ember::cpu {

enum ScratchSlot { kGemmPackA, kGemmPackB, kConvColumns0, kConvColumns1, kScratchSlots };

template <class T>
T* thread_scratch(ScratchSlot slot, int64_t n) {
  struct Buffer {
    std::unique_ptr<unsigned char[]> bytes;
    size_t capacity = 0;
  };
  thread_local Buffer buffers[kScratchSlots];
  Buffer& b = buffers[slot];
  const size_t need = static_cast<size_t>(n) * sizeof(T) + 63;
  if (need > b.capacity) {
    b.bytes.reset(new unsigned char[need]);
    b.capacity = need;
  }
  const auto p = reinterpret_cast<std::uintptr_t>(b.bytes.get());
  return reinterpret_cast<T*>((p + 63) & ~std::uintptr_t{63});
}

}  // namespace ember::cpu
