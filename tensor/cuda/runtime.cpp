#include "tensor/cuda/runtime.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "tensor/allocator.h"
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

void synchronize() { EMBER_CUDA_CHECK(cudaDeviceSynchronize()); }

namespace {
struct StreamTable {
  std::mutex mu;
  std::vector<cudaStream_t> streams;  // per device, created on first use
};
StreamTable& stream_table() {
  static StreamTable t;
  return t;
}
thread_local std::vector<void*> tls_override;  // per device, set by set_current_stream
}  // namespace

void* current_stream() {
  int d = current_device();
  if (d < static_cast<int>(tls_override.size()) && tls_override[d]) return tls_override[d];
  auto& t = stream_table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.streams.size() <= static_cast<size_t>(d)) t.streams.resize(d + 1, nullptr);
  if (!t.streams[d]) EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&t.streams[d], cudaStreamNonBlocking));
  return t.streams[d];
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
  void raw_free(void* ptr) override { EMBER_CUDA_CHECK(cudaFree(ptr)); }
  Device device() const override { return Device::cuda(device_); }

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

void copy_bytes(void* dst, const void* src, size_t nbytes, CopyKind kind, void* stream) {
  if (nbytes == 0) return;
  cudaMemcpyKind k = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, stream_of(stream)));
  if (kind != CopyKind::device_to_device) EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(stream)));
}

void check_launch(const char* kernel, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  bool found_by_sync = false;
  if (err == cudaSuccess && launch_sync()) {
    err = cudaDeviceSynchronize();
    if (err == cudaSuccess) err = cudaGetLastError();
    found_by_sync = err != cudaSuccess;
  }
  if (err != cudaSuccess)
    throw Error(launch_error_message(kernel, current_profile_op(), file, line, cudaGetErrorString(err), found_by_sync));
}

void* pinned_alloc(size_t nbytes) {
  void* p = nullptr;
  EMBER_CUDA_CHECK(cudaMallocHost(&p, nbytes));
  return p;
}
void pinned_free(void* ptr) { EMBER_CUDA_CHECK(cudaFreeHost(ptr)); }

#else  // no CUDA backend

bool built() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return kNoCudaBackend; }
void set_device(int) { throw no_cuda_backend("cuda::set_device"); }
int current_device() { throw no_cuda_backend("cuda::current_device"); }
void synchronize() { throw no_cuda_backend("cuda::synchronize"); }
void* current_stream() { throw no_cuda_backend("cuda::current_stream"); }
void set_current_stream(void*) { throw no_cuda_backend("cuda::set_current_stream"); }
Allocator& caching_allocator(int) { throw no_cuda_backend("cuda::caching_allocator"); }
void copy_bytes(void*, const void*, size_t, CopyKind, void*) { throw no_cuda_backend("cuda::copy_bytes"); }
void* pinned_alloc(size_t) { throw no_cuda_backend("cuda::pinned_alloc"); }
void pinned_free(void*) { throw no_cuda_backend("cuda::pinned_free"); }
void check_launch(const char*, const char*, int) { throw no_cuda_backend("cuda::check_launch"); }

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

std::string launch_error_message(const std::string& kernel, const std::string& op, const std::string& file,
                                 int line, const std::string& error, bool found_by_sync) {
  std::string m = "CUDA kernel " + kernel;
  if (!op.empty()) m += " (op " + op + ")";
  m += " at " + file + ":" + std::to_string(line);
  m += found_by_sync ? " faulted (found by EMBER_CUDA_SYNC=1): " : " failed at launch: ";
  return m + error;
}
}  // namespace ember::cuda
