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
      if (b.event) {  // its last upload may still be reading it
        cuda::event_synchronize(b.event);
        cuda::event_destroy(b.event);
      }
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

static size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

DataLoader::Slot DataLoader::make_slot(int64_t b, int64_t epoch) {
  Slot slot;
  try {
    slot.batch = make_batch(b, epoch);
    if (pinned_upload_ && slot.batch.images.defined()) {
      // images, labels, targets one after another in one page-locked buffer
      Batch& batch = slot.batch;
      batch.images = batch.images.contiguous();
      if (batch.targets.defined()) batch.targets = batch.targets.contiguous();
      slot.labels_at = align_up(batch.images.nbytes());
      slot.targets_at = slot.labels_at + align_up(batch.labels.nbytes());
      const size_t total = slot.targets_at + (batch.targets.defined() ? batch.targets.nbytes() : 0);
      slot.pinned = take_pinned(total);
      char* p = static_cast<char*>(slot.pinned.ptr);
      std::memcpy(p, batch.images.data_ptr(), batch.images.nbytes());
      std::memcpy(p + slot.labels_at, batch.labels.data_ptr(), batch.labels.nbytes());
      if (batch.targets.defined()) std::memcpy(p + slot.targets_at, batch.targets.data_ptr(), batch.targets.nbytes());
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
  ahead_.reset();  // a batch uploaded ahead: its memory waits for its streams (record_stream)
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

std::optional<DataLoader::Slot> DataLoader::take_slot() {
  if (next_consume_ >= num_batches_) return std::nullopt;
  if (options_.num_workers == 0) return make_slot(next_consume_++, epoch_);
  std::unique_lock<std::mutex> lock(mu_);
  ready_cv_.wait(lock, [&] { return ready_.count(next_consume_) > 0; });
  auto it = ready_.find(next_consume_);
  Slot slot = std::move(it->second);
  ready_.erase(it);
  next_consume_++;
  lock.unlock();
  work_cv_.notify_all();
  return slot;
}

std::optional<Batch> DataLoader::next() {
  if (!active_) reset();
  if (pinned_upload_) return next_uploaded();
  for (;;) {
    std::optional<Slot> slot = take_slot();
    if (!slot) {
      stop_workers();
      active_ = false;
      return std::nullopt;
    }
    if (slot->error) std::rethrow_exception(slot->error);
    if (slot->batch.size() == 0) continue;  // every sample of the batch was a bad file
    return deliver(std::move(*slot));
  }
}

// ---- delivery to the device ----------------------------------------------------------------------

Batch DataLoader::deliver(Slot slot) {  // without pin_memory
  Batch batch = std::move(slot.batch);
  if (!options_.device.is_cuda()) return batch;
  batch.images = batch.images.to(options_.device);
  batch.labels = batch.labels.to(options_.device);
  if (batch.targets.defined()) batch.targets = batch.targets.to(options_.device);
  return batch;
}

std::optional<Batch> DataLoader::next_uploaded() {
  if (!ahead_) ahead_ = stage_next();  // the first batch of a pass
  Staged current = std::move(*ahead_);
  ahead_.reset();
  if (current.end) {
    stop_workers();
    active_ = false;
    return std::nullopt;
  }
  if (current.error) std::rethrow_exception(current.error);  // the next call stages the batch after it
  cuda::set_device(options_.device.index);
  // The device waits for the upload, the host does not. (Before the next upload can re-record
  // the event: a page-locked buffer and its event may be reused for it.)
  cuda::stream_wait_event(cuda::current_stream(), current.event);
  ahead_ = stage_next();  // the next batch's upload overlaps the caller's work on this one
  return std::move(current.batch);
}

DataLoader::Staged DataLoader::stage_next() {
  Staged staged;
  for (;;) {
    std::optional<Slot> slot = take_slot();
    if (!slot) {
      staged.end = true;
      return staged;
    }
    if (slot->error || slot->batch.size() == 0) {
      give_back_pinned(slot->pinned);
      if (!slot->error) continue;  // every sample of the batch was a bad file
      staged.error = slot->error;
      return staged;
    }
    try {
      return upload(std::move(*slot));
    } catch (...) {
      staged.error = std::current_exception();
      return staged;
    }
  }
}

namespace {
// Allocations in this scope come from `stream` (the Storage remembers the stream it was made on).
class AllocateOn {
 public:
  explicit AllocateOn(void* stream) : prev_(cuda::current_stream()) { cuda::set_current_stream(stream); }
  ~AllocateOn() { cuda::set_current_stream(prev_); }
  AllocateOn(const AllocateOn&) = delete;
  AllocateOn& operator=(const AllocateOn&) = delete;

 private:
  void* prev_;
};
}  // namespace

DataLoader::Staged DataLoader::upload(Slot slot) {
  cuda::set_device(options_.device.index);
  void* compute = cuda::current_stream();
  void* copy = cuda::copy_stream();
  Batch batch = std::move(slot.batch);
  PinnedBuffer pinned = slot.pinned;
  Tensor images, labels, targets;
  try {
    {
      AllocateOn on_copy_stream(copy);
      images = empty(batch.images.shape(), batch.images.dtype(), options_.device);
      labels = empty(batch.labels.shape(), batch.labels.dtype(), options_.device);
      if (batch.targets.defined()) targets = empty(batch.targets.shape(), batch.targets.dtype(), options_.device);
    }
    const char* p = static_cast<const char*>(pinned.ptr);
    cuda::copy_bytes_async(images.data_ptr(), p, images.nbytes(), cuda::CopyKind::host_to_device, copy);
    cuda::copy_bytes_async(labels.data_ptr(), p + slot.labels_at, labels.nbytes(), cuda::CopyKind::host_to_device,
                           copy);
    if (targets.defined())
      cuda::copy_bytes_async(targets.data_ptr(), p + slot.targets_at, targets.nbytes(),
                             cuda::CopyKind::host_to_device, copy);
    if (!pinned.event) pinned.event = cuda::event_create(copy);
    cuda::event_record(pinned.event, copy);
  } catch (...) {
    // Whatever was queued may still read the buffer: wait for the copy stream before reusing it.
    try {
      cuda::stream_synchronize(copy);
    } catch (...) {
    }
    give_back_pinned(pinned);
    throw;
  }
  give_back_pinned(pinned);  // reused by a worker once pinned.event has completed
  // Read on the current stream: not reused before it has passed the point where they are freed.
  record_stream(images, compute);
  record_stream(labels, compute);
  record_stream(targets, compute);
  batch.images = images;
  batch.labels = labels;
  batch.targets = targets;
  Staged staged;
  staged.batch = std::move(batch);
  staged.event = pinned.event;
  return staged;
}

DataLoader::PinnedBuffer DataLoader::take_pinned(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(pinned_mu_);
    for (size_t i = 0; i < pinned_free_.size(); ++i) {
      // Big enough, and its last upload done (never waited for: another buffer is made instead).
      if (pinned_free_[i].bytes >= bytes && (!pinned_free_[i].event || cuda::event_query(pinned_free_[i].event))) {
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
