#include "tensor/cuda/runtime.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/cuda/deferred_checks.h"
#include "tensor/dispatch.h"
#include "tensor/env.h"
#include "tensor/error.h"
#include "tensor/profiler.h"

#ifdef EMBER_WITH_CUDA
#include "tensor/cuda/check.h"
#endif

namespace ember::cuda {

#ifdef EMBER_WITH_CUDA

bool built() { return true; }

int device_count() {
  static int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return n;
  }();
  return count;
}

std::string unavailable_reason() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA device: ") + cudaGetErrorString(err);
  }
  return n == 0 ? "no CUDA device found" : "";
}

static void require_device(int index, const char* what) {
  int n = device_count();
  EMBER_CHECK(n > 0, what, ": ", unavailable_reason());
  EMBER_CHECK(index >= 0 && index < n, what, ": device cuda:", index, " out of range (", n,
              " device(s))");
}

void set_device(int index) {
  require_device(index, "cuda::set_device");
  EMBER_CUDA_CHECK(cudaSetDevice(index));
}

int current_device() {
  int d = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void synchronize() {
  note_host_sync("cuda::synchronize (cudaDeviceSynchronize)");
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  poll_deferred_checks();
}

namespace {
// Makes `device` current for a scope and puts the previous one back.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    EMBER_CUDA_CHECK(cudaGetDevice(&prev_));
    if (device != prev_) EMBER_CUDA_CHECK(cudaSetDevice(device));
    now_ = device;
  }
  ~DeviceGuard() {
    if (now_ != prev_) cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0, now_ = 0;
};

struct StreamTable {
  std::mutex mu;
  std::vector<cudaStream_t> compute, copy;  // per device, created on first use
  std::vector<std::pair<void*, int>> known;  // every stream created here, with its device
};
StreamTable& stream_table() {
  static StreamTable t;
  return t;
}
thread_local std::vector<void*> tls_override;  // per device, set by set_current_stream

void* table_stream(std::vector<cudaStream_t>& streams, int d) {
  auto& t = stream_table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (streams.size() <= static_cast<size_t>(d)) streams.resize(d + 1, nullptr);
  if (!streams[d]) {
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[d], cudaStreamNonBlocking));
    t.known.emplace_back(streams[d], d);
  }
  return streams[d];
}
}  // namespace

void* current_stream() {
  int d = current_device();
  if (d < static_cast<int>(tls_override.size()) && tls_override[d]) return tls_override[d];
  return table_stream(stream_table().compute, d);
}

void* copy_stream() { return table_stream(stream_table().copy, current_device()); }

int stream_device(void* stream) {
  {
    auto& t = stream_table();
    std::lock_guard<std::mutex> lock(t.mu);
    for (auto& [s, d] : t.known)
      if (s == stream) return d;
  }
#if CUDART_VERSION >= 12080
  if (stream) {
    int d = 0;
    if (cudaStreamGetDevice(stream_of(stream), &d) == cudaSuccess) return d;
    cudaGetLastError();
  }
#endif
  return current_device();
}

void stream_synchronize(void* stream) {
  note_host_sync("cuda::stream_synchronize (cudaStreamSynchronize)");
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(stream)));
  poll_deferred_checks();
}

void* event_create(void* stream) {
  DeviceGuard guard(stream_device(stream));
  cudaEvent_t e = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void event_record(void* event, void* stream) {
  EMBER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), stream_of(stream)));
}

bool event_query(void* event) {
  cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (err == cudaErrorNotReady) {
    cudaGetLastError();  // not an error: clear it, or the next launch check would report it
    return false;
  }
  EMBER_CUDA_CHECK(err);
  return true;
}

void event_synchronize(void* event) {
  note_host_sync("cuda::event_synchronize (cudaEventSynchronize)");
  EMBER_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
}

void event_destroy(void* event) { EMBER_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event))); }

void stream_wait_event(void* stream, void* event) {
  EMBER_CUDA_CHECK(cudaStreamWaitEvent(stream_of(stream), static_cast<cudaEvent_t>(event), 0));
}

namespace {
class CudaStreamEvents final : public StreamEvents {
 public:
  void* create_event(void* stream) override { return event_create(stream); }
  void record_event(void* event, void* stream) override { event_record(event, stream); }
  bool query_event(void* event) override { return event_query(event); }
  void synchronize_event(void* event) override { event_synchronize(event); }
  void destroy_event(void* event) override { event_destroy(event); }
};
}  // namespace

StreamEvents& stream_events() {
  static auto* events = new CudaStreamEvents;  // never destroyed: used until the process ends
  return *events;
}

void set_current_stream(void* stream) {
  int d = current_device();
  if (tls_override.size() <= static_cast<size_t>(d)) tls_override.resize(d + 1, nullptr);
  tls_override[d] = stream;
}

namespace {
class CudaRawAllocator final : public RawAllocator {
 public:
  explicit CudaRawAllocator(int device) : device_(device) {}
  void* raw_allocate(size_t nbytes) override {
    int prev = current_device();
    EMBER_CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, nbytes);
    cudaSetDevice(prev);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    EMBER_CUDA_CHECK(err);
    return p;
  }
  void raw_free(void* ptr) override {
    note_host_sync("cudaFree (the caching allocator returning memory)");
    EMBER_CUDA_CHECK(cudaFree(ptr));
  }
  Device device() const override { return Device::cuda(device_); }
  StreamEvents* events() override { return &stream_events(); }

 private:
  int device_;
};
}  // namespace

Allocator& caching_allocator(int device) {
  require_device(device, "cuda::caching_allocator");
  static std::mutex mu;
  static std::vector<std::unique_ptr<CachingAllocator>> allocators;
  std::lock_guard<std::mutex> lock(mu);
  if (allocators.size() <= static_cast<size_t>(device)) allocators.resize(device + 1);
  if (!allocators[device])
    allocators[device] = std::make_unique<CachingAllocator>(std::make_unique<CudaRawAllocator>(device));
  return *allocators[device];
}

static cudaMemcpyKind memcpy_kind(CopyKind kind) {
  return kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
         : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                            : cudaMemcpyDeviceToDevice;
}

static bool is_page_locked(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

void copy_bytes_async(void* dst, const void* src, size_t nbytes, CopyKind kind, void* stream) {
  if (nbytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, memcpy_kind(kind), stream_of(stream)));
}

void copy_bytes(void* dst, const void* src, size_t nbytes, CopyKind kind, void* stream) {
  if (nbytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, memcpy_kind(kind), stream_of(stream)));
  if (kind == CopyKind::device_to_host) {
    note_host_sync("copy to the host (Tensor::item, .cpu(), to_vector)");
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(stream)));
    poll_deferred_checks();
  } else if (kind == CopyKind::host_to_device && is_page_locked(src)) {
    note_host_sync("copy_bytes from page-locked memory (use copy_bytes_async and an event)");
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(stream)));
  } else if (kind == CopyKind::host_to_device) {
    // CUDA stages pageable memory before returning and "may synchronize with the stream" to do
    // so: counted, so that a step whose uploads are not from page-locked memory shows it.
    note_host_sync("copy from pageable host memory to the device (CUDA may wait for the stream)");
  }
}

void copy_peer(void* dst, int dst_device, void* dst_stream, const void* src, int src_device, void* src_stream,
               size_t nbytes) {
  if (nbytes == 0) return;
  {
    DeviceGuard guard(src_device);
    cudaEvent_t ready = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventRecord(ready, stream_of(src_stream)));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(stream_of(dst_stream), ready, 0));
    EMBER_CUDA_CHECK(cudaEventDestroy(ready));  // released by CUDA once it has completed
  }
  DeviceGuard guard(dst_device);
  EMBER_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, stream_of(dst_stream)));
}

void check_launch(const char* kernel, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  bool found_by_sync = false;
  if (err == cudaSuccess && launch_sync()) {
    note_host_sync("EMBER_CUDA_SYNC=1 after a launch");
    err = cudaDeviceSynchronize();
    if (err == cudaSuccess) err = cudaGetLastError();
    found_by_sync = err != cudaSuccess;
  }
  if (err != cudaSuccess)
    throw Error(launch_error_message(kernel, current_profile_op(), file, line, cudaGetErrorString(err), found_by_sync));
}

void* pinned_alloc(size_t nbytes) {
  void* p = nullptr;
  EMBER_CUDA_CHECK(cudaHostAlloc(&p, nbytes, cudaHostAllocPortable));  // page-locked for every device
  return p;
}
void pinned_free(void* ptr) {
  note_host_sync("cudaFreeHost");
  EMBER_CUDA_CHECK(cudaFreeHost(ptr));
}

// ---- deferred checks -------------------------------------------------------------------------

namespace {
// Page-locked slots of 64 bytes for the verdicts, carved from 4 KiB blocks that live as long as
// the process (a handful are in flight at a time).
class PinnedSlots {
 public:
  static constexpr size_t kSlot = 64, kBlock = 4096;
  void* take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) {
      void* block = nullptr;
      EMBER_CUDA_CHECK(cudaHostAlloc(&block, kBlock, cudaHostAllocPortable));  // for a copy from any device
      for (size_t off = 0; off < kBlock; off += kSlot) free_.push_back(static_cast<char*>(block) + off);
    }
    void* p = free_.back();
    free_.pop_back();
    return p;
  }
  void give_back(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(p);
  }

 private:
  std::mutex mu_;
  std::vector<void*> free_;
};
PinnedSlots& pinned_slots() {
  static auto* s = new PinnedSlots;
  return *s;
}
DeferredChecks& deferred_checks() {
  static auto* d = new DeferredChecks(stream_events());  // never destroyed, like the events
  return *d;
}
}  // namespace

void defer_check(const void* device_src, size_t nbytes, std::function<void(const void*)> verdict) {
  EMBER_CHECK(nbytes <= PinnedSlots::kSlot, "cuda::defer_check: ", nbytes, " bytes (at most ", PinnedSlots::kSlot,
              ")");
  void* stream = current_stream();
  void* slot = pinned_slots().take();
  std::shared_ptr<void> held(slot, [](void* p) { pinned_slots().give_back(p); });
  copy_bytes_async(slot, device_src, nbytes, CopyKind::device_to_host, stream);
  deferred_checks().add(stream, [held, verdict = std::move(verdict)] { verdict(held.get()); });
  if (launch_sync()) flush_deferred_checks();
}

void poll_deferred_checks() {
  if (deferred_checks().pending() > 0) deferred_checks().poll();
}
void flush_deferred_checks() {
  if (deferred_checks().pending() > 0) deferred_checks().flush();
}
size_t deferred_check_count() { return deferred_checks().pending(); }

#else  // no CUDA backend

bool built() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return kNoCudaBackend; }
void set_device(int) { throw no_cuda_backend("cuda::set_device"); }
int current_device() { throw no_cuda_backend("cuda::current_device"); }
void synchronize() { throw no_cuda_backend("cuda::synchronize"); }
void* current_stream() { throw no_cuda_backend("cuda::current_stream"); }
void set_current_stream(void*) { throw no_cuda_backend("cuda::set_current_stream"); }
void* copy_stream() { throw no_cuda_backend("cuda::copy_stream"); }
int stream_device(void*) { throw no_cuda_backend("cuda::stream_device"); }
void stream_synchronize(void*) { throw no_cuda_backend("cuda::stream_synchronize"); }
void* event_create(void*) { throw no_cuda_backend("cuda::event_create"); }
void event_record(void*, void*) { throw no_cuda_backend("cuda::event_record"); }
bool event_query(void*) { throw no_cuda_backend("cuda::event_query"); }
void event_synchronize(void*) { throw no_cuda_backend("cuda::event_synchronize"); }
void event_destroy(void*) { throw no_cuda_backend("cuda::event_destroy"); }
void stream_wait_event(void*, void*) { throw no_cuda_backend("cuda::stream_wait_event"); }
StreamEvents& stream_events() { throw no_cuda_backend("cuda::stream_events"); }
Allocator& caching_allocator(int) { throw no_cuda_backend("cuda::caching_allocator"); }
void copy_bytes(void*, const void*, size_t, CopyKind, void*) { throw no_cuda_backend("cuda::copy_bytes"); }
void copy_bytes_async(void*, const void*, size_t, CopyKind, void*) { throw no_cuda_backend("cuda::copy_bytes_async"); }
void copy_peer(void*, int, void*, const void*, int, void*, size_t) { throw no_cuda_backend("cuda::copy_peer"); }
void* pinned_alloc(size_t) { throw no_cuda_backend("cuda::pinned_alloc"); }
void pinned_free(void*) { throw no_cuda_backend("cuda::pinned_free"); }
void check_launch(const char*, const char*, int) { throw no_cuda_backend("cuda::check_launch"); }
void defer_check(const void*, size_t, std::function<void(const void*)>) { throw no_cuda_backend("cuda::defer_check"); }
void poll_deferred_checks() {}  // nothing can be pending without the backend
void flush_deferred_checks() {}
size_t deferred_check_count() { return 0; }

#endif

}  // namespace ember::cuda

namespace ember::cuda {
bool is_available() { return device_count() > 0; }

static std::atomic<bool>& launch_sync_setting() {
  static std::atomic<bool> on{env_flag("EMBER_CUDA_SYNC")};
  return on;
}
bool launch_sync() { return launch_sync_setting().load(std::memory_order_relaxed); }
void set_launch_sync(bool on) { launch_sync_setting().store(on); }

namespace {
struct HostSyncs {
  std::atomic<uint64_t> count{0};
  std::mutex mu;
  std::vector<std::string> reasons;  // the first 64 since the last reset
};
HostSyncs& host_syncs() {
  static auto* h = new HostSyncs;  // never destroyed: syncs may be counted during exit
  return *h;
}
}  // namespace

uint64_t host_sync_count() { return host_syncs().count.load(); }
void reset_host_sync_count() {
  auto& h = host_syncs();
  std::lock_guard<std::mutex> lock(h.mu);
  h.count = 0;
  h.reasons.clear();
}
void note_host_sync(const char* what) {
  auto& h = host_syncs();
  std::lock_guard<std::mutex> lock(h.mu);
  h.count++;
  if (h.reasons.size() < 64) h.reasons.emplace_back(what);
}
std::vector<std::string> host_sync_reasons() {
  auto& h = host_syncs();
  std::lock_guard<std::mutex> lock(h.mu);
  return h.reasons;
}

std::string launch_error_message(const std::string& kernel, const std::string& op, const std::string& file,
                                 int line, const std::string& error, bool found_by_sync) {
  std::string m = "CUDA kernel " + kernel;
  if (!op.empty()) m += " (op " + op + ")";
  m += " at " + file + ":" + std::to_string(line);
  m += found_by_sync ? " faulted (found by EMBER_CUDA_SYNC=1): " : " failed at launch: ";
  return m + error;
}
}  // namespace ember::cuda
