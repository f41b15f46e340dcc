// Memory comes from an Allocator. Two are built in:
//  - CpuAllocator: 64-byte-aligned host memory (cache lines, AVX-512 loads).
//  - CachingAllocator: keeps freed blocks in size buckets per stream and hands them out again,
//    so a training step allocates from the device only in its first iteration. It wraps any
//    RawAllocator; the CUDA backend wraps cudaMalloc/cudaFree with it (tensor/cuda/).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "tensor/device.h"

namespace ember {

struct AllocatorStats {
  size_t in_use = 0;       // bytes handed out and not yet freed (rounded sizes)
  size_t peak = 0;         // highest in_use so far
  size_t cached = 0;       // bytes held in free lists, ready for reuse
  size_t device_allocs = 0;  // calls to the underlying raw allocator
  size_t reuses = 0;         // allocations served from the cache
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // `stream` is an opaque stream handle (cudaStream_t on CUDA, nullptr on the CPU).
  virtual void* allocate(size_t nbytes, void* stream = nullptr) = 0;
  virtual void deallocate(void* ptr, size_t nbytes, void* stream = nullptr) = 0;
  virtual Device device() const = 0;
  virtual AllocatorStats stats() const { return {}; }
  virtual void empty_cache() {}
};

class CpuAllocator final : public Allocator {
 public:
  static constexpr size_t kAlignment = 64;
  void* allocate(size_t nbytes, void* stream = nullptr) override;
  void deallocate(void* ptr, size_t nbytes, void* stream = nullptr) override;
  Device device() const override { return Device::cpu(); }
  AllocatorStats stats() const override;

 private:
  mutable std::mutex mu_;
  AllocatorStats stats_;
};

// The memory a CachingAllocator draws from (cudaMalloc, or host memory in tests).
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  virtual void* raw_allocate(size_t nbytes) = 0;  // returns nullptr when out of memory
  virtual void raw_free(void* ptr) = 0;
  virtual Device device() const = 0;
};

class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(std::unique_ptr<RawAllocator> raw);
  ~CachingAllocator() override;
  // Sizes are rounded up: to 512 bytes below 1 MiB, to 2 MiB above (fewer distinct buckets).
  static size_t round_size(size_t nbytes);
  void* allocate(size_t nbytes, void* stream = nullptr) override;
  void deallocate(void* ptr, size_t nbytes, void* stream = nullptr) override;
  Device device() const override { return raw_->device(); }
  AllocatorStats stats() const override;
  void empty_cache() override;  // returns every cached block to the raw allocator

 private:
  std::unique_ptr<RawAllocator> raw_;
  mutable std::mutex mu_;
  // Free blocks per stream, keyed by rounded size; a request takes the smallest block that
  // fits if it is no more than twice the request.
  std::map<void*, std::multimap<size_t, void*>> free_;
  std::unordered_map<void*, size_t> live_;  // ptr -> rounded size
  AllocatorStats stats_;
};

// The allocator used for new tensors on `device` (the CUDA one is created on first use).
Allocator& allocator_for(Device device);

}  // namespace ember
