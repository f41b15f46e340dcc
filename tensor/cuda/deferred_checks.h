// Checks whose verdict the device computes and the host reads later, without waiting for it.
//
// A kernel that finds bad input (cross_entropy's class ids out of range) writes a flag in device
// memory. Reading it at once would stop the host until the kernel has run: a host sync in the
// middle of a training step. Instead the flag is copied, on the same stream, into page-locked
// memory, an event is recorded after the copy, and the check that reads it waits here. It runs
// once its event has completed: polled at the next check that is added, after every host sync
// ember makes (a copy to the host, cuda::synchronize()), and at flush(). A failing check throws
// from that call, with its own message. The error therefore surfaces a little after the call that
// caused it; EMBER_CUDA_SYNC=1 runs every check at its own call (tensor/cuda/runtime.h).
//
// This class is the bookkeeping only, written against StreamEvents (tensor/allocator.h) so a
// CPU test can drive it with fake events; cuda::defer_check (runtime.h) is the CUDA use of it.
#pragma once
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/allocator.h"

namespace ember {

class DeferredChecks {
 public:
  explicit DeferredChecks(StreamEvents& events) : events_(events) {}
  ~DeferredChecks();  // drops the checks not yet run (without running them)
  DeferredChecks(const DeferredChecks&) = delete;
  DeferredChecks& operator=(const DeferredChecks&) = delete;

  // `check` runs once the work queued on `stream` so far (the kernel and the copy of its verdict)
  // has completed. It may throw.
  void add(void* stream, std::function<void()> check);
  // Runs, in the order they were added, the checks whose work has completed; never blocks. The
  // first that throws is removed and its exception propagates (the others stay for later).
  void poll();
  // Blocks until every pending check's work has completed (a host sync when there are any), then
  // runs them as poll() does.
  void flush();
  size_t pending() const;

 private:
  struct Entry {
    void* event = nullptr;
    void* stream = nullptr;
    std::function<void()> check;
  };
  bool take_ready(Entry& out);  // the oldest entry whose event has completed, removed

  StreamEvents& events_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;
  std::unordered_map<void*, std::vector<void*>> event_pool_;  // stream -> events free for reuse
};

}  // namespace ember
