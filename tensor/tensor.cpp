#include "tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include "tensor/convert.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/copy.h"

namespace ember {

// ---- Storage -----------------------------------------------------------------

// Debug: with EMBER_POISON_ALLOC=1 in the environment (read at the first allocation), every
// fresh buffer, from the device or from a cache, is filled with 0xFF bytes before anyone writes
// it: NaN in every floating dtype, -1 in the integers. A kernel that leaves an output element
// unwritten then shows NaN instead of whatever the memory held. The op harness
// (tests/tensor/test_backend_ops.cpp) runs every case with it.
static bool poison_fresh_buffers() {
  static const bool on = [] {
    const char* env = std::getenv("EMBER_POISON_ALLOC");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }();
  return on;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  allocator_ = &allocator_for(device);
  if (device.is_cuda()) {
    cuda::set_device(device.index);
    stream_ = cuda::current_stream();
  }
  data_ = allocator_->allocate(nbytes, stream_);
  if (nbytes > 0 && poison_fresh_buffers()) {  // debug: NaN everywhere until written
    if (device.is_cpu()) {
      std::memset(data_, 0xFF, nbytes);
    } else {
      std::vector<unsigned char> nan_bytes(nbytes, 0xFF);
      cuda::copy_bytes(data_, nan_bytes.data(), nbytes, cuda::CopyKind::host_to_device, stream_);
      cuda::synchronize();  // the host buffer dies here
    }
  }
}

Storage::~Storage() {
  if (data_) allocator_->deallocate(data_, nbytes_, stream_);
}

void Storage::record_stream(void* stream) {
  if (data_ && device_.is_cuda() && stream != stream_) allocator_->record_stream(data_, stream);
}

void record_stream(const Tensor& t, void* stream) {
  if (t.defined()) t.storage()->record_stream(stream);
}

// ---- Tensor ------------------------------------------------------------------

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype)
    : storage_(std::move(storage)), shape_(std::move(shape)), strides_(std::move(strides)), offset_(offset),
      dtype_(dtype) {
  EMBER_CHECK(shape_.size() == strides_.size(), "Tensor: shape ", ember::shape_str(shape_), " and strides ",
              ember::shape_str(strides_), " differ in length");
  for (int64_t s : shape_) EMBER_CHECK(s >= 0, "Tensor: negative size in shape ", ember::shape_str(shape_));
}

Device Tensor::device() const {
  EMBER_CHECK(defined(), "Tensor::device: undefined tensor");
  return storage_->device();
}

int64_t Tensor::size(int64_t d) const { return shape_[normalize_dim(d, dim(), "Tensor::size")]; }
int64_t Tensor::stride(int64_t d) const { return strides_[normalize_dim(d, dim(), "Tensor::stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape_[d] == 1) continue;
    if (strides_[d] != expected) return false;
    expected *= shape_[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  EMBER_CHECK(defined(), "Tensor::data_ptr: undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(itemsize());
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << dtype_name(dtype_) << ", " << device().str() << ", " << shape_str();
  if (numel() <= 16) {
    auto v = to_vector<double>();
    os << ", [";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "]";
  }
  os << ")";
  return os.str();
}

// ---- views ---------------------------------------------------------------------

static Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      EMBER_CHECK(infer < 0, op, ": only one dim may be -1, got ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      EMBER_CHECK(out[i] >= 0, op, ": negative size in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0, op, ": cannot infer -1 in ", shape_str(shape), " for ", numel,
                " elements (from ", shape_str(from), ")");
    out[infer] = numel / known;
    known *= out[infer];
  }
  EMBER_CHECK(known == numel, op, ": shape ", shape_str(shape), " has ", known, " elements but the tensor ",
              shape_str(from), " has ", numel);
  return out;
}

// Strides for viewing (shape_, strides_) as `target` without a copy, or empty when impossible.
// Groups of old dims that are contiguous with each other can be split or merged freely.
static bool view_strides(const Shape& shape, const Shape& strides, const Shape& target, Shape& out) {
  out.assign(target.size(), 0);
  if (shape_numel(shape) == 0 || shape.empty()) {  // nothing to keep in place (empty, or 0-d: target is all 1s)
    out = contiguous_strides(target);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Tensor Tensor::view(const Shape& shape) const {
  Shape target = infer_shape(shape, numel(), "view", shape_);
  Shape st;
  EMBER_CHECK(view_strides(shape_, strides_, target, st), "view: cannot view a tensor of shape ", shape_str(),
              " with strides ", ember::shape_str(strides_), " as ", ember::shape_str(target),
              " without a copy (use reshape)");
  return Tensor(storage_, target, st, offset_, dtype_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape target = infer_shape(shape, numel(), "reshape", shape_);
  Shape st;
  if (view_strides(shape_, strides_, target, st)) return Tensor(storage_, target, st, offset_, dtype_);
  return contiguous().view(target);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = normalize_dim(start, dim(), "flatten");
  end = normalize_dim(end, dim(), "flatten");
  EMBER_CHECK(start <= end, "flatten: start dim ", start, " after end dim ", end);
  Shape s(shape_.begin(), shape_.begin() + start);
  int64_t m = 1;
  for (int64_t d = start; d <= end; ++d) m *= shape_[d];
  s.push_back(m);
  s.insert(s.end(), shape_.begin() + end + 1, shape_.end());
  return reshape(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: got ", dims.size(), " dims for a tensor of ",
              dim(), " dims ", shape_str());
  Shape s(dim()), st(dim());
  std::vector<bool> seen(dim(), false);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = normalize_dim(dims[i], dim(), "permute");
    EMBER_CHECK(!seen[d], "permute: dim ", d, " repeated in ", ember::shape_str(dims));
    seen[d] = true;
    s[i] = shape_[d];
    st[i] = strides_[d];
  }
  return Tensor(storage_, s, st, offset_, dtype_);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = normalize_dim(d0, dim(), "transpose");
  d1 = normalize_dim(d1, dim(), "transpose");
  Shape s = shape_, st = strides_;
  std::swap(s[d0], s[d1]);
  std::swap(st[d0], st[d1]);
  return Tensor(storage_, s, st, offset_, dtype_);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = normalize_dim(d, dim(), "narrow");
  if (start < 0) start += shape_[d];
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d], "narrow: range [", start, ", ",
              start + length, ") out of bounds for dim ", d, " of size ", shape_[d]);
  Shape s = shape_;
  s[d] = length;
  return Tensor(storage_, s, strides_, offset_ + start * strides_[d], dtype_);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = normalize_dim(d, dim(), "slice");
  EMBER_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = shape_[d];
  auto clampi = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  start = clampi(start);
  end = clampi(end);
  int64_t len = end > start ? (end - start + step - 1) / step : 0;
  Shape s = shape_, st = strides_;
  s[d] = len;
  st[d] = strides_[d] * step;
  return Tensor(storage_, s, st, offset_ + start * strides_[d], dtype_);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = normalize_dim(d, dim(), "select");
  int64_t n = shape_[d];
  EMBER_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  Shape s = shape_, st = strides_;
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage_, s, st, offset_ + index * strides_[d], dtype_);
}

Tensor Tensor::squeeze() const {
  Shape s, st;
  for (int64_t d = 0; d < dim(); ++d)
    if (shape_[d] != 1) {
      s.push_back(shape_[d]);
      st.push_back(strides_[d]);
    }
  return Tensor(storage_, s, st, offset_, dtype_);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = normalize_dim(d, dim(), "squeeze");
  if (shape_[d] != 1) return *this;
  Shape s = shape_, st = strides_;
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage_, s, st, offset_, dtype_);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape_, st = strides_;
  int64_t stride = d < dim() ? strides_[d] * shape_[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return Tensor(storage_, s, st, offset_, dtype_);
}

Tensor Tensor::expand(const Shape& shape) const {
  if (shape == shape_) return *this;
  EMBER_CHECK(shape.size() >= shape_.size(), "expand: cannot expand shape ", shape_str(), " to ",
              ember::shape_str(shape), " (fewer dims)");
  Shape target = shape;
  size_t lead = shape.size() - shape_.size();
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      EMBER_CHECK(i >= lead, "expand: -1 not allowed in a new leading dim, got ", ember::shape_str(shape));
      target[i] = shape_[i - lead];
    }
  }
  Shape st = broadcast_strides(shape_, strides_, target, "expand");
  return Tensor(storage_, target, st, offset_, dtype_);
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  return Tensor(storage_, shape, strides, offset, dtype_);
}

// ---- copies --------------------------------------------------------------------

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_, device());
  copy_into(out, *this);
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = empty(shape_, dtype_, d);
  copy_into(out, *this);
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype_) return *this;
  Tensor out = empty(shape_, t, device());
  copy_into(out, *this);
  return out;
}

Tensor& Tensor::copy_(const Tensor& src) {
  copy_into(*this, src);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  fill(*this, value);
  return *this;
}

double Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item: tensor of shape ", shape_str(), " has ", numel(), " elements, expected 1");
  return to_vector<double>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = to(Device::cpu()).to(dtype_of<T>()).contiguous();
  const T* p = static_cast<const T*>(host.data_ptr());
  return std::vector<T>(p, p + numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<ember::bf16> Tensor::to_vector<ember::bf16>() const;
template std::vector<ember::f16> Tensor::to_vector<ember::f16>() const;

// ---- creation ------------------------------------------------------------------

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) EMBER_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto storage = std::make_shared<Storage>(nbytes, device);
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}
Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  EMBER_CHECK(step != 0, "arange: step must not be 0");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + i * step;
  return from_vector(v, {n}, dtype, device);
}
Tensor arange(int64_t end, DType dtype, Device device) { return arange(0.0, double(end), 1.0, dtype, device); }

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  EMBER_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values for shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor host = empty(shape, dtype_of<T>(), Device::cpu());
  if (!values.empty()) std::copy(values.begin(), values.end(), static_cast<T*>(host.data_ptr()));
  return host.to(dtype).to(device);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, DType, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, DType, Device);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, DType, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, DType, Device);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, DType, Device);

}  // namespace ember
