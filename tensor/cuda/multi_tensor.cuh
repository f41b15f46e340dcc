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

// Copies `entries` (entries_bytes, trivially copyable structs) and the chunk list of tensors of
// `sizes` elements (each > 0) to the device, on the current stream. The copy is from pageable
// memory: cudaMemcpyAsync has read the host buffer when it returns (the driver stages it), and
// it does not wait for the stream's earlier work; the kernel launched next on the stream sees
// the table. The table returns to the caching allocator when the result goes out of scope,
// after the launch is enqueued; later allocations on the stream are ordered after the kernel.
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
  EMBER_CUDA_CHECK(cudaMemcpyAsync(t.buffer.data_ptr(), host.data(), host.size(), cudaMemcpyHostToDevice,
                                   stream_of(current_stream())));
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

}  // namespace ember::cuda
