// The CUDA runtime as ember uses it: devices, streams, the caching allocator and copies.
// This header has no CUDA types in it, so it compiles in every build; without the CUDA
// backend, device_count() is 0 and everything else throws an Error saying so.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ember {
class Allocator;
class StreamEvents;
namespace cuda {

bool built();                  // was the CUDA backend compiled in?
int device_count();            // 0 without the backend or without a GPU (never throws)
bool is_available();           // device_count() > 0
std::string unavailable_reason();  // why not, for skipped tests: "built without CUDA", ...

void set_device(int index);
int current_device();
void synchronize();  // the whole device (a host sync)

// The stream ember launches on for the current device (a cudaStream_t, opaque here).
// Defaults to a non-blocking stream per device; set_current_stream switches it (per thread).
void* current_stream();
void set_current_stream(void* stream);
// A second non-blocking stream per device (the current one), for uploads that overlap compute:
// the data loader copies the next batch on it while the current stream computes.
void* copy_stream();
// The device a stream belongs to: ember's own streams are known; another stream is asked of
// CUDA (12.8 and later), else taken to be the current device's.
int stream_device(void* stream);
void stream_synchronize(void* stream);  // a host sync

// Events (cudaEvent_t, opaque here), created without timing. Recording marks the work queued on
// a stream so far; a stream that waits on an event runs nothing queued after the wait before
// that work is done, and the host does not wait.
void* event_create(void* stream);  // on stream's device
void event_record(void* event, void* stream);
bool event_query(void* event);        // done? never blocks
void event_synchronize(void* event);  // a host sync
void event_destroy(void* event);
void stream_wait_event(void* stream, void* event);
// The same, as the interface the CachingAllocator and DeferredChecks are written against.
StreamEvents& stream_events();

Allocator& caching_allocator(int device);

enum class CopyKind { host_to_device, device_to_host, device_to_device };
// A copy queued on `stream`, returning when the host may reuse its memory:
//  - device_to_host: after the copy (a host sync);
//  - host_to_device from pageable memory (any CPU Tensor): when CUDA has copied the source
//    aside, which it does before cudaMemcpyAsync returns, waiting for the stream if it must
//    (counted as a host sync: it may be one);
//  - host_to_device from page-locked memory: after the copy (a host sync), since the DMA reads
//    the source later; copy_bytes_async is the overlapped way, with an event;
//  - device_to_device (one device): at once.
void copy_bytes(void* dst, const void* src, size_t nbytes, CopyKind kind, void* stream);
// Queued on `stream` and nothing more: the caller keeps src and dst alive and unchanged until
// `stream` has passed the copy (record an event after it). For uploads from page-locked memory.
void copy_bytes_async(void* dst, const void* src, size_t nbytes, CopyKind kind, void* stream);
// Between two devices: queued on dst_stream (on dst_device) behind the work queued on src_stream
// so far (an event the destination stream waits on; the host does not wait). The source must
// stay allocated until dst_stream has passed the copy: copy_into records dst_stream on its
// staging tensor (record_stream) for that.
void copy_peer(void* dst, int dst_device, void* dst_stream, const void* src, int src_device, void* src_stream,
               size_t nbytes);

// Page-locked host memory for fast transfers (the data loader's prefetch uses it).
void* pinned_alloc(size_t nbytes);
void pinned_free(void* ptr);  // a host sync (cudaFreeHost waits for the device)

// ---- host syncs ----------------------------------------------------------------------------
// Every place ember blocks the host on the GPU, or lets CUDA do so, counts here:
// cuda::synchronize and stream_synchronize; a copy to the host (Tensor::item, .cpu(),
// to_vector); a copy to the device through copy_bytes (from page-locked memory it waits, from
// pageable memory CUDA may); event_synchronize (the allocator out of memory or in empty_cache,
// DeferredChecks::flush); cudaFree (cached memory returned) and cudaFreeHost; and the
// synchronization EMBER_CUDA_SYNC=1 adds after each launch. A training step should make
// at most one (reading its loss): tests/apps/test_cuda_step.cpp checks it for EfficientNet and
// ViT. The counter is process-wide and counts on every build (without CUDA nothing calls it).
uint64_t host_sync_count();
void reset_host_sync_count();
// Counts one, remembering `what` (a string literal naming the call) among the first 64 since
// the last reset, so a test that finds too many can say where they came from.
void note_host_sync(const char* what);
std::vector<std::string> host_sync_reasons();

// ---- deferred checks (tensor/cuda/deferred_checks.h) ---------------------------------------
// A verdict the device writes and the host reads without waiting: the nbytes (at most 64) at
// device_src are copied on the current stream into page-locked memory, and `verdict` gets them
// once that copy has completed — at the next defer_check, after the next host sync ember makes,
// or at flush_deferred_checks — and may throw, which that call then throws. With launch_sync()
// on (EMBER_CUDA_SYNC=1) it runs before defer_check returns.
void defer_check(const void* device_src, size_t nbytes, std::function<void(const void* host_bytes)> verdict);
void poll_deferred_checks();   // runs the checks whose copies are done; never blocks
void flush_deferred_checks();  // waits for all of them (a host sync when any is pending) and runs them
size_t deferred_check_count();  // pending ones

// Launch checking. Every <<<...>>> launch is followed by EMBER_CUDA_CHECK_LAUNCH (check.h),
// which calls check_launch. A bad configuration is caught at once; a fault inside a kernel is
// asynchronous and would surface at some later call, far from its cause. With launch_sync() on
// (EMBER_CUDA_SYNC=1 in the environment, or set_launch_sync(true)) check_launch also
// synchronizes the device after every launch, so the fault is reported at the kernel that made
// it, naming that kernel and the op that launched it (the innermost ProfileScope). Slow: for
// debugging and for the first run on a new GPU.
bool launch_sync();
void set_launch_sync(bool on);
void check_launch(const char* kernel, const char* file, int line);
// The message check_launch throws: "CUDA kernel conv2d_forward_kernel (op conv2d, forward) at
// tensor/ops/conv2d_cuda.cu:172 failed at launch: <error>", or "... faulted (found by
// EMBER_CUDA_SYNC=1): <error>" when the fault was found by the synchronization. `op` may be "".
std::string launch_error_message(const std::string& kernel, const std::string& op, const std::string& file,
                                 int line, const std::string& error, bool found_by_sync);

}  // namespace cuda
}  // namespace ember
