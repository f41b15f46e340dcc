// Tensor: data only. A shared Storage (bytes on one device) viewed through a shape, strides
// (in elements) and an offset, with one dtype. Views share storage; nothing here knows about
// gradients (that is autograd::Variable's job).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/shape.h"

namespace ember {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // allocates through allocator_for(device)
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  void* stream() const { return stream_; }  // the stream it was allocated on (nullptr on the CPU)
  // Its memory is also used on `stream`: when it is freed, the allocator hands it out again only
  // after `stream` has passed that point (Allocator::record_stream). A no-op on the CPU.
  void record_stream(void* stream);

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  void* stream_ = nullptr;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;    // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  size_t itemsize() const { return dtype_size(dtype_); }
  size_t nbytes() const { return numel() * itemsize(); }
  Device device() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  std::string shape_str() const { return ember::shape_str(shape_); }
  std::string str() const;  // "Tensor(f32, cpu, [2, 3])" and the values when small and on the CPU

  // Pointer to element 0 of the view.
  void* data_ptr() const;
  template <class T> T* data() const {
    EMBER_CHECK(dtype_of<T>() == dtype_, "Tensor::data<", dtype_name(dtype_of<T>()), ">: tensor has dtype ",
                dtype_name(dtype_));
    return static_cast<T*>(data_ptr());
  }

  // ---- views: share storage, no copy -------------------------------------
  Tensor view(const Shape& shape) const;     // needs compatible strides; one dim may be -1
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // Python-style bounds
  Tensor select(int64_t dim, int64_t index) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim; size-1 dims get stride 0
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // ---- copies ---------------------------------------------------------------
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(Device device) const;  // itself when already there
  Tensor to(DType dtype) const;
  Tensor to(Device device, DType dtype) const { return to(device).to(dtype); }
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor& copy_(const Tensor& src);  // broadcasting src to this shape, converting dtype/device
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  double item() const;  // one element, as double
  template <class T> std::vector<T> to_vector() const;  // contiguous copy on the host

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::f32;
};

// The memory of `t` is used on `stream` too (a cudaStream_t other than the one it was allocated
// on): its storage is not reused before `stream` has passed the point where the last reference
// to it is dropped. Call it after queueing the work on `stream`, like PyTorch's
// Tensor.record_stream. A no-op for CPU tensors and undefined ones.
void record_stream(const Tensor& t, void* stream);

// ---- creation -----------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// [start, end) by step, like NumPy.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32, Device device = Device::cpu());
Tensor arange(int64_t end, DType dtype = DType::i64, Device device = Device::cpu());
// From host values, converted to `dtype`.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype = dtype_of<T>(),
                   Device device = Device::cpu());
Tensor scalar_tensor(double value, DType dtype = DType::f32, Device device = Device::cpu());

}  // namespace ember
