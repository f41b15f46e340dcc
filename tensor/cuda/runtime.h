// The CUDA runtime as ember uses it: devices, streams, the caching allocator and copies.
// This header has no CUDA types in it, so it compiles in every build; without the CUDA
// backend, device_count() is 0 and everything else throws an Error saying so.
#pragma once
#include <cstddef>
#include <string>

namespace ember {
class Allocator;
namespace cuda {

bool built();                  // was the CUDA backend compiled in?
int device_count();            // 0 without the backend or without a GPU (never throws)
bool is_available();           // device_count() > 0
std::string unavailable_reason();  // why not, for skipped tests: "built without CUDA", ...

void set_device(int index);
int current_device();
void synchronize();

// The stream ember launches on for the current device (a cudaStream_t, opaque here).
// Defaults to a non-blocking stream per device; set_current_stream switches it.
void* current_stream();
void set_current_stream(void* stream);

Allocator& caching_allocator(int device);

enum class CopyKind { host_to_device, device_to_host, device_to_device };
// Asynchronous on `stream`, synchronized before returning for device_to_host.
void copy_bytes(void* dst, const void* src, size_t nbytes, CopyKind kind, void* stream);

// Page-locked host memory for fast transfers (the data loader's prefetch uses it).
void* pinned_alloc(size_t nbytes);
void pinned_free(void* ptr);

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
