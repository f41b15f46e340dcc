// Memory comes from an Allocator. Two are built in:
//  - CpuAllocator: 64-byte-aligned host memory (cache lines, AVX-512 loads).
//  - CachingAllocator: keeps freed blocks in size buckets per stream and hands them out again,
//    so a training step allocates from the device only in its first iteration. It wraps any
//    RawAllocator; the CUDA backend wraps cudaMalloc/cudaFree with it (tensor/cuda/).
//
// Streams. A block belongs to the stream it was allocated on, and work on one stream runs in
// order, so a block freed on its own stream can be handed out again at once: whatever the next
// owner launches on that stream runs after the last use. A block that another stream also used
// (the data loader's uploads, a copy between devices) is different: that stream may still be
// reading or writing it when the host frees it. record_stream(ptr, stream) says so, as
// PyTorch's Tensor.record_stream does; at the free the allocator records an event on each such
// stream and keeps the block aside (stats().pending) until every event has completed. Events are
// polled, never waited for, on later allocations; only when the device is out of memory, or in
// empty_cache(), does the allocator block on them (stats().event_syncs counts those times).
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/device.h"

namespace ember {

struct AllocatorStats {
  size_t in_use = 0;       // bytes handed out and not yet freed (rounded sizes)
  size_t peak = 0;         // highest in_use so far
  size_t cached = 0;       // bytes held in free lists, ready for reuse
  size_t device_allocs = 0;  // calls to the underlying raw allocator
  size_t reuses = 0;         // allocations served from the cache
  size_t pending = 0;        // bytes freed but waiting for other streams' events (record_stream)
  size_t deferred_frees = 0;  // frees that had to wait for other streams
  size_t event_syncs = 0;     // times the allocator blocked the host on pending events
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
  // The memory at `ptr` (as allocate returned it) is also used on `stream`, besides the one it
  // was allocated on: its reuse waits until `stream` has passed the point of the free. A no-op
  // where memory has no streams (the CPU).
  virtual void record_stream(void* /*ptr*/, void* /*stream*/) {}
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

// Events on streams: how the CachingAllocator learns that a stream has passed a point. The CUDA
// backend's are cudaEvent_t (tensor/cuda/runtime.cpp); the tests drive the allocator with a fake
// whose streams finish when the test says so (tests/tensor/test_stream_memory.cpp).
class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  virtual void* create_event(void* stream) = 0;              // one that can be recorded on `stream`
  virtual void record_event(void* event, void* stream) = 0;  // marks the work queued on `stream` so far
  virtual bool query_event(void* event) = 0;                 // has that work finished? never blocks
  virtual void synchronize_event(void* event) = 0;           // blocks the host until it has (a host sync)
  virtual void destroy_event(void* event) = 0;
};

// The memory a CachingAllocator draws from (cudaMalloc, or host memory in tests), and the events
// of its streams.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  virtual void* raw_allocate(size_t nbytes) = 0;  // returns nullptr when out of memory
  virtual void raw_free(void* ptr) = 0;
  virtual Device device() const = 0;
  // nullptr: the memory has no asynchronous streams, so record_stream is a no-op and a freed
  // block is reusable at once.
  virtual StreamEvents* events() { return nullptr; }
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
  // Returns every cached block to the raw allocator, first waiting for the events of blocks
  // still pending (a host sync, counted in stats().event_syncs, only when there are any).
  void empty_cache() override;
  // Throws when `ptr` is not a live block of this allocator. Recording the allocation stream
  // itself, or a stream twice, changes nothing.
  void record_stream(void* ptr, void* stream) override;

 private:
  struct Block {
    size_t size = 0;
    void* stream = nullptr;      // the stream it was allocated on (and whose free list takes it back)
    std::vector<void*> uses;     // other streams that used it (record_stream)
  };
  struct Pending {               // freed, waiting for the events on the streams that used it
    void* ptr = nullptr;
    Block block;
    std::vector<std::pair<void*, void*>> events;  // (event, the stream it was recorded on)
  };
  void* take_event_locked(void* stream);
  void give_back_event_locked(void* event, void* stream);
  void process_pending_locked();  // moves blocks whose events have all completed to the free lists
  void wait_pending_locked();     // blocks on every pending event, then processes them
  void release_cached_locked();   // every free block back to the raw allocator

  std::unique_ptr<RawAllocator> raw_;
  StreamEvents* events_ = nullptr;  // raw_->events()
  mutable std::mutex mu_;
  // Free blocks per stream, keyed by rounded size; a request takes the smallest block that
  // fits if it is no more than twice the request.
  std::map<void*, std::multimap<size_t, void*>> free_;
  std::unordered_map<void*, Block> live_;
  std::list<Pending> pending_;
  std::unordered_map<void*, std::vector<void*>> event_pool_;  // stream -> events free for reuse
  AllocatorStats stats_;
};

// The allocator used for new tensors on `device` (the CUDA one is created on first use).
Allocator& allocator_for(Device device);

}  // namespace ember
