// DataLoader: worker threads, the bounded reorder buffer, the decoded cache and the upload.
#include "data/loader.h"

#include <cstring>
#include <numeric>

#include "tensor/cuda/runtime.h"

namespace ember::data {

DataLoader::DataLoader(DatasetPtr dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  EMBER_CHECK(dataset_ != nullptr, "DataLoader: null dataset");
  EMBER_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be > 0, got ", options_.batch_size);
  EMBER_CHECK(options_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", options_.num_workers);
  EMBER_CHECK(options_.prefetch >= 1, "DataLoader: prefetch must be >= 1, got ", options_.prefetch);
  EMBER_CHECK(options_.world_size >= 1, "DataLoader: world_size must be >= 1, got ", options_.world_size);
  EMBER_CHECK(options_.rank >= 0 && options_.rank < options_.world_size, "DataLoader: rank ", options_.rank,
              " is not in [0, world_size = ", options_.world_size, ")");
  if (options_.device.is_cuda()) {
    EMBER_CHECK(cuda::is_available(), "DataLoader: device ", options_.device.str(),
                " requested but CUDA is not available (", cuda::unavailable_reason(), ")");
    pinned_upload_ = options_.pin_memory;
  }
  if (options_.cache_decoded) cache_.resize(static_cast<size_t>(dataset_->size()));
}

DataLoader::~DataLoader() {
  stop_workers();  // also returns the pinned buffers of unconsumed batches to pinned_free_
  for (PinnedBuffer& b : pinned_free_) {
    try {
      cuda::pinned_free(b.ptr);
    } catch (const std::exception&) {  // a destructor must not throw
    }
  }
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), world = options_.world_size, g = options_.batch_size * world;
  const int64_t tail = n % g;  // a short last global batch: kept unless drop_last, or too short to share
  return n / g + (tail > 0 && !options_.drop_last && tail >= world ? 1 : 0);
}

// Positions [begin, end) of epoch_order that make this rank's share of global batch b.
std::pair<int64_t, int64_t> DataLoader::share(int64_t b) const {
  const int64_t n = static_cast<int64_t>(order_.size()), world = options_.world_size, r = options_.rank;
  const int64_t g = options_.batch_size * world;
  const int64_t begin = b * g, total = std::min(g, n - begin);
  return {begin + r * total / world, begin + (r + 1) * total / world};
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  if (!options_.shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    return order;
  }
  Rng rng = Rng::derive(options_.seed, static_cast<uint64_t>(epoch), 0x0bde);
  return rng.permutation(n);
}

int64_t DataLoader::cached_count() const { return cached_.load(); }

void DataLoader::set_epoch(int64_t epoch) {
  stop_workers();
  active_ = false;
  epoch_ = epoch;
  epoch_used_ = false;
}

// ---- building a batch (on a worker, or on the caller with num_workers = 0) --------------------

Sample DataLoader::load(int64_t index) const {
  if (options_.cache_decoded && cache_[index].ok()) return cache_[index];
  Sample s = dataset_->get(index);
  if (options_.cache_decoded && s.ok()) {
    cache_[index] = s;
    cached_++;
  }
  return s;
}

Batch DataLoader::make_batch(int64_t b, int64_t epoch) const {
  const auto [begin, end] = share(b);
  Batch batch;
  batch.first = begin - b * options_.batch_size * options_.world_size;
  std::vector<Tensor> images;
  std::vector<int64_t> labels;
  for (int64_t pos = begin; pos < end; ++pos) {
    const int64_t index = order_[pos];
    Sample s;
    try {
      s = load(index);
    } catch (const std::exception& e) {
      throw make_error("DataLoader: sample ", index, " (epoch ", epoch, ", batch ", b, "): ", e.what());
    }
    if (!s.ok()) continue;  // a bad file left out by a skip_bad dataset
    Tensor image;
    try {
      image = to_float_image(s.image);
      if (options_.transform) {
        Rng rng = Rng::derive(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index));
        image = options_.transform(image, rng);
      }
    } catch (const std::exception& e) {
      throw make_error("DataLoader: transform of sample ", index, " '", s.name, "': ", e.what());
    }
    EMBER_CHECK(image.defined() && image.dtype() == DType::f32 && image.dim() == 3 && image.device().is_cpu(),
                "DataLoader: the transform of sample ", index, " '", s.name,
                "' must return a (C, H, W) f32 CPU image, got ", image.defined() ? image.str() : "undefined");
    if (!images.empty())
      EMBER_CHECK(image.shape() == images.front().shape(), "DataLoader: sample ", index, " '", s.name,
                  "' has shape ", image.shape_str(), " but sample '", batch.names.front(), "' of the same batch has ",
                  images.front().shape_str(), " (add a Resize or RandomCrop to the transform)");
    images.push_back(image.contiguous());
    labels.push_back(s.label);
    batch.names.push_back(std::move(s.name));
    batch.indices.push_back(index);
  }
  if (images.empty()) return batch;

  Shape shape = images.front().shape();
  shape.insert(shape.begin(), static_cast<int64_t>(images.size()));
  batch.images = empty(shape, DType::f32);  // (B, C, H, W)
  const int64_t per = images.front().numel();
  float* dst = batch.images.data<float>();
  for (size_t i = 0; i < images.size(); ++i) std::memcpy(dst + i * per, images[i].data<float>(), per * sizeof(float));
  batch.labels = from_vector<int64_t>(labels, {static_cast<int64_t>(labels.size())});  // (B)
  if (options_.batch_transform) {
    Rng rng = Rng::derive(options_.seed ^ 0xba7c4ull, static_cast<uint64_t>(epoch), static_cast<uint64_t>(b));
    try {
      MixedBatch mixed = options_.batch_transform(batch.images, batch.labels, rng);
      batch.images = mixed.images;
      batch.targets = mixed.targets;
    } catch (const std::exception& e) {
      throw make_error("DataLoader: batch_transform of batch ", b, " (epoch ", epoch, "): ", e.what());
    }
  }
  return batch;
}

DataLoader::Slot DataLoader::make_slot(int64_t b, int64_t epoch) {
  Slot slot;
  try {
    slot.batch = make_batch(b, epoch);
    if (pinned_upload_ && slot.batch.images.defined()) {
      Tensor images = slot.batch.images.contiguous();
      slot.pinned = take_pinned(images.nbytes());
      std::memcpy(slot.pinned.ptr, images.data_ptr(), images.nbytes());
    }
  } catch (...) {
    slot.error = std::current_exception();
  }
  return slot;
}

// ---- workers -------------------------------------------------------------------------------------

void DataLoader::worker_loop(int64_t epoch) {
  const int64_t capacity = static_cast<int64_t>(options_.num_workers) * options_.prefetch;
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] {
        return stop_ || next_claim_ >= num_batches_ || next_claim_ < next_consume_ + capacity;
      });
      if (stop_ || next_claim_ >= num_batches_) return;
      b = next_claim_++;
    }
    Slot slot = make_slot(b, epoch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_[b] = std::move(slot);
    }
    ready_cv_.notify_all();
  }
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [b, slot] : ready_) give_back_pinned(slot.pinned);
  ready_.clear();
  stop_ = false;
}

void DataLoader::reset() {
  stop_workers();
  if (epoch_used_) epoch_++;
  epoch_used_ = true;
  active_ = true;
  order_ = epoch_order(epoch_);
  num_batches_ = num_batches();
  next_claim_ = next_consume_ = 0;
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back(&DataLoader::worker_loop, this, epoch_);
}

std::optional<Batch> DataLoader::next() {
  if (!active_) reset();
  for (;;) {
    if (next_consume_ >= num_batches_) {
      stop_workers();
      active_ = false;
      return std::nullopt;
    }
    Slot slot;
    if (options_.num_workers == 0) {
      slot = make_slot(next_consume_++, epoch_);
    } else {
      std::unique_lock<std::mutex> lock(mu_);
      ready_cv_.wait(lock, [&] { return ready_.count(next_consume_) > 0; });
      auto it = ready_.find(next_consume_);
      slot = std::move(it->second);
      ready_.erase(it);
      next_consume_++;
      lock.unlock();
      work_cv_.notify_all();
    }
    if (slot.error) std::rethrow_exception(slot.error);
    if (slot.batch.size() == 0) continue;  // every sample of the batch was a bad file
    return deliver(std::move(slot));
  }
}

// ---- delivery to the device ----------------------------------------------------------------------

Batch DataLoader::deliver(Slot slot) {
  Batch batch = std::move(slot.batch);
  if (!options_.device.is_cuda()) return batch;
  if (slot.pinned.ptr) {
    Tensor images = empty(batch.images.shape(), DType::f32, options_.device);  // (B, C, H, W)
    cuda::set_device(options_.device.index);
    try {
      cuda::copy_bytes(images.data_ptr(), slot.pinned.ptr, images.nbytes(), cuda::CopyKind::host_to_device,
                       cuda::current_stream());
    } catch (...) {
      give_back_pinned(slot.pinned);
      throw;
    }
    give_back_pinned(slot.pinned);
    batch.images = images;
  } else {
    batch.images = batch.images.to(options_.device);
  }
  batch.labels = batch.labels.to(options_.device);
  if (batch.targets.defined()) batch.targets = batch.targets.to(options_.device);
  return batch;
}

DataLoader::PinnedBuffer DataLoader::take_pinned(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(pinned_mu_);
    for (size_t i = 0; i < pinned_free_.size(); ++i) {
      if (pinned_free_[i].bytes >= bytes) {
        PinnedBuffer b = pinned_free_[i];
        pinned_free_.erase(pinned_free_.begin() + static_cast<std::ptrdiff_t>(i));
        return b;
      }
    }
  }
  return {cuda::pinned_alloc(bytes), bytes};
}

void DataLoader::give_back_pinned(PinnedBuffer buffer) {
  if (!buffer.ptr) return;
  std::lock_guard<std::mutex> lock(pinned_mu_);
  pinned_free_.push_back(buffer);
}

}  // namespace ember::data
