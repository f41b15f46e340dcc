// What the multi-tensor optimizer kernels share (adamw_cuda.cu, sgd_cuda.cu): the table of
// tensors and chunks they read from device memory, and its upload. Use from .cu files only.
//
// Layout of the table (one device buffer): the kernel's entries (one per tensor: pointers, size,
// coefficients), padded to 16 bytes, then the chunks: (entry, begin) for every kMultiTensorChunk
// elements of every tensor. A launch has min(chunks, kMultiTensorMaxBlocks) blocks; block b
// takes chunks b, b + gridDim.x, ... and its threads stride over the chunk's elements.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <vector>

#include "tensor/cuda/check.h"
#include "tensor/tensor.h"

namespace ember::cuda {

constexpr int64_t kMultiTensorChunk = 65536;  // elements per chunk
constexpr int kMultiTensorThreads = 512;
constexpr int64_t kMultiTensorMaxBlocks = 1024;  // more chunks than this: blocks take several

struct TensorChunk {
  int64_t entry;  // index of the tensor in the entries
  int64_t begin;  // first element of the chunk
};

struct MultiTensorTable {
  Tensor buffer;  // (bytes) u8 on the device: entries, then chunks
  int64_t entries_bytes = 0;
  int64_t num_chunks = 0;
  const void* entries() const { return buffer.data_ptr(); }
  const TensorChunk* chunks() const {
    return reinterpret_cast<const TensorChunk*>(static_cast<const char*>(buffer.data_ptr()) + entries_bytes);
  }
};

inline unsigned multi_tensor_grid(int64_t num_chunks) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(num_chunks, kMultiTensorMaxBlocks)));
}

// Small per-step uploads (the tables below) staged through page-locked slots. A copy from
// pageable memory may make the host wait (the driver stages it and may synchronise with the
// stream first), which would put a host sync into every optimizer step; from page-locked memory
// cudaMemcpyAsync only queues. A slot is reused once an event recorded after its copy has
// completed (cudaEventQuery, never a wait), so a slot is never overwritten while a queued copy
// still reads it; slots are per device (events belong to one) and live for the process, like
// the caching allocator's blocks, so nothing is torn down after the CUDA runtime at exit.
class PinnedUploadSlots {
 public:
  static PinnedUploadSlots& for_current_device() {
    static std::mutex mu;
    static auto* per_device = new std::vector<PinnedUploadSlots*>();
    int device = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    std::lock_guard<std::mutex> lock(mu);
    if (per_device->size() <= static_cast<size_t>(device)) per_device->resize(static_cast<size_t>(device) + 1, nullptr);
    auto*& slots = (*per_device)[static_cast<size_t>(device)];
    if (!slots) slots = new PinnedUploadSlots();
    return *slots;
  }

  // Copies nbytes from host memory `src` (any) to device memory `dst` on `stream`; returns
  // without waiting for the device.
  void upload(void* dst, const void* src, size_t nbytes, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    Slot* slot = nullptr;
    for (Slot& s : slots_) {
      if (s.bytes < nbytes) continue;
      const cudaError_t q = cudaEventQuery(s.done);  // cudaSuccess also for a never-recorded event
      if (q == cudaErrorNotReady) continue;
      EMBER_CUDA_CHECK(q);
      slot = &s;
      break;
    }
    if (!slot) {
      Slot s;
      s.bytes = std::max<size_t>(nbytes, 4096);
      s.host = pinned_alloc(s.bytes);
      EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
      slots_.push_back(s);
      slot = &slots_.back();
    }
    std::memcpy(slot->host, src, nbytes);
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, slot->host, nbytes, cudaMemcpyHostToDevice, stream));
    EMBER_CUDA_CHECK(cudaEventRecord(slot->done, stream));
  }
  size_t slot_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return slots_.size();
  }

 private:
  struct Slot {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;
  };
  mutable std::mutex mu_;
  std::deque<Slot> slots_;  // a deque: pointers to slots stay valid as it grows
};

// Copies `entries` (entries_bytes, trivially copyable structs) and the chunk list of tensors of
// `sizes` elements (each > 0) to the device, on the current stream, through PinnedUploadSlots:
// the host does not wait, and the kernel launched next on the stream sees the table. The table
// returns to the caching allocator when the result goes out of scope, after the launch is
// enqueued; later allocations on the stream are ordered after the kernel.
inline MultiTensorTable upload_multi_tensor_table(const void* entries, size_t entries_bytes,
                                                  const std::vector<int64_t>& sizes, Device device) {
  std::vector<TensorChunk> chunks;
  for (size_t e = 0; e < sizes.size(); ++e)
    for (int64_t b = 0; b < sizes[e]; b += kMultiTensorChunk) chunks.push_back({static_cast<int64_t>(e), b});
  const size_t padded = (entries_bytes + 15) / 16 * 16;
  std::vector<unsigned char> host(padded + chunks.size() * sizeof(TensorChunk), 0);
  std::memcpy(host.data(), entries, entries_bytes);
  std::memcpy(host.data() + padded, chunks.data(), chunks.size() * sizeof(TensorChunk));
  MultiTensorTable t;
  t.buffer = empty({static_cast<int64_t>(host.size())}, DType::u8, device);
  t.entries_bytes = static_cast<int64_t>(padded);
  t.num_chunks = static_cast<int64_t>(chunks.size());
  PinnedUploadSlots::for_current_device().upload(t.buffer.data_ptr(), host.data(), host.size(),
                                                 stream_of(current_stream()));
  return t;
}

// The indices of `tensors` grouped by dtype, each group in order (one launch per group).
inline std::vector<std::vector<size_t>> indices_by_dtype(const std::vector<Tensor>& tensors) {
  std::vector<std::vector<size_t>> groups;
  std::vector<DType> dtypes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto it = std::find(dtypes.begin(), dtypes.end(), tensors[i].dtype());
    if (it == dtypes.end()) {
      dtypes.push_back(tensors[i].dtype());
      groups.emplace_back();
      it = dtypes.end() - 1;
    }
    groups[static_cast<size_t>(it - dtypes.begin())].push_back(i);
  }
  return groups;
}

// fn<T, S>() for an optimizer's parameter dtype T and its state/arithmetic type S (f32 for the
// 16-bit types): the dispatch AdamW and SGD share.
template <class Fn>
void dispatch_param(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn.template operator()<float, float>();
    case DType::f64: return fn.template operator()<double, double>();
    case DType::bf16: return fn.template operator()<ember::bf16, float>();
    case DType::f16: return fn.template operator()<ember::f16, float>();
    default: throw make_error(op, ": dtype ", dtype_name(t), " not supported on CUDA (expected f32, f64, bf16 or f16)");
  }
}

}  // namespace ember::cuda
