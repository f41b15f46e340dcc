// DataLoader: batches from a Dataset, decoded and augmented ahead of the training loop by worker
// threads.
//
//   DataLoader loader(train_set, {.batch_size = 128, .num_workers = 2, .transform = train_tf});
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     loader.set_epoch(epoch);            // optional: passes count up from 0 by themselves
//     for (Batch& batch : loader) { ... batch.images (B, 3, H, W) f32, batch.labels (B) i64 ... }
//   }
//
// How it works.
//   - A pass (epoch) visits the dataset in epoch_order(epoch): a permutation drawn from
//     (seed, epoch) when shuffling, 0..n-1 otherwise. Batch b is positions [b·B, (b+1)·B) of it.
//   - Workers claim batch numbers in order and build them whole: get() each sample (or take it from
//     the decoded cache), convert u8 -> f32 in [0, 1], apply `transform` with the sample's own Rng
//     (Rng::derive(seed, epoch, index)), stack, then apply `batch_transform` with the batch's Rng.
//     Every random draw is thus a function of (seed, epoch, index or batch number): the batches
//     are identical, bit for bit and in the same order, for any num_workers (0 included).
//   - At most num_workers · prefetch batches are claimed and not yet consumed (the bounded
//     prefetch queue); finished batches wait in a reorder buffer until their turn.
//   - An exception in a worker is stored with its batch and rethrown by next() when that batch's
//     turn comes, prefixed with the sample index (decode errors already name the file). The pass
//     then goes on with the next batch.
//   - Samples a skip_bad dataset found bad (Sample::ok() false) are dropped from their batch, so
//     that batch is smaller; a batch with nothing left is skipped.
//   - cache_decoded keeps every decoded u8 sample after its first visit (CIFAR-10 train:
//     50,000 · 3 · 32 · 32 = 150 MB), so later epochs only augment.
//   - Data parallelism (world_size N > 1): every rank builds the same epoch_order, global batch b
//     is positions [b·N·B, (b+1)·N·B) of it (B = batch_size, per rank), and rank r takes the r-th
//     of N contiguous shares of it, so N ranks at batch B see exactly the images one process sees
//     at batch N·B for the same seed, each augmented as that process would (per-sample draws are
//     keyed by the sample's index, not by the rank). The tail: a last global batch of T < N·B
//     images is cut into N shares of ⌊T/N⌋ or ⌈T/N⌉ (rank r: [⌊r·T/N⌋, ⌊(r+1)·T/N⌋)); with
//     T < N some rank would have nothing, so that tail is dropped on every rank. drop_last drops
//     any short tail. A batch_transform (mixup, cutmix) pairs images within a rank's share, so its
//     results do depend on N. Batch::first is where the share starts in its global batch.
//   - device: where batches are delivered (images, labels and targets; names and indices stay on
//     the host). For a CUDA device with pin_memory (what the apps set for --device cuda), the
//     workers also copy each batch into a page-locked buffer (cuda::pinned_alloc), and the
//     upload runs on the device's copy stream (cuda::copy_stream), one batch ahead: next()
//     returns batch b, uploaded while batch b - 1 was being used, and queues the upload of batch
//     b + 1 before returning, so it overlaps the caller's work on b. The current stream waits
//     for b's upload on the device (an event), and the host waits for nothing. The batch's
//     device memory comes from the copy stream and is marked as used on the current stream
//     (record_stream), so it is not reused before the step that read it has finished; a
//     page-locked buffer is reused once its upload's event has completed. An error in batch
//     b + 1 is still thrown by the next() that would have returned it. Without pin_memory next()
//     uploads from ordinary memory on the current stream. pin_memory has no effect for CPU
//     batches (an ember Tensor cannot live in page-locked memory).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace ember::data {

struct Batch {
  Tensor images;   // (B, 3, H, W) f32
  Tensor labels;   // (B) i64
  Tensor targets;  // (B, C) f32 soft targets when a batch_transform ran; undefined otherwise
  std::vector<std::string> names;
  std::vector<int64_t> indices;  // dataset indices of the samples
  // Data parallelism: where this rank's share starts in its global batch (0 for one process), so
  // that per-sample random draws of the model (dropout, drop-path) are keyed by the sample's
  // place in the global batch (GlobalSampleScope, tensor/ops/dropout.h).
  int64_t first = 0;
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

using BatchTransform = std::function<MixedBatch(const Tensor& images, const Tensor& labels, Rng& rng)>;

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // leave out the last, smaller batch
  int num_workers = 2;     // 0: batches are built on the calling thread, inside next()
  int prefetch = 2;        // batches per worker that may be ready ahead of the consumer
  uint64_t seed = 0;
  Transform transform{};            // per sample, on (3, H, W) f32 in [0, 1]; empty: none
  BatchTransform batch_transform{};  // per batch (Mixup, Cutmix, ...); empty: none
  bool cache_decoded = false;
  bool pin_memory = false;
  Device device = Device::cpu();
  int rank = 0;        // data parallelism: this process's share of each global batch (above)
  int world_size = 1;
};

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, LoaderOptions options = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next pass (begin() or the next() after the end of a pass) uses this epoch; a pass in
  // progress is abandoned. Without it, the first pass is epoch 0 and each new pass epoch + 1.
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }  // of the current pass, or the next one
  int64_t num_batches() const;              // per pass
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  // Starts a pass (abandoning one in progress).
  void reset();
  // The next batch of the current pass, starting one if none is active; nullopt at its end.
  std::optional<Batch> next();

  class Iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    explicit Iterator(DataLoader* loader) : loader_(loader) { advance(); }
    Batch& operator*() { return *current_; }
    Batch* operator->() { return &*current_; }
    Iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(const Iterator& other) const { return loader_ == other.loader_; }

   private:
    void advance() {
      current_ = loader_->next();
      if (!current_) loader_ = nullptr;
    }
    DataLoader* loader_ = nullptr;
    std::optional<Batch> current_;
  };
  Iterator begin() {
    reset();
    return Iterator(this);
  }
  Iterator end() { return Iterator(); }

  const DatasetPtr& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }
  int64_t cached_count() const;  // samples in the decoded cache

 private:
  struct PinnedBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    void* event = nullptr;  // recorded on the copy stream after the last upload from it (or none yet)
  };
  struct Slot {
    Batch batch;
    std::exception_ptr error;
    PinnedBuffer pinned;  // images, labels and targets, page-locked, when uploading with pin_memory
    size_t labels_at = 0, targets_at = 0;  // their byte offsets in it
  };
  struct Staged {  // the batch uploaded ahead (pin_memory on a CUDA device)
    Batch batch;
    std::exception_ptr error;
    void* event = nullptr;  // its upload, which the current stream waits for when it is returned
    bool end = false;       // the pass has no more batches
  };

  Sample load(int64_t index) const;
  std::pair<int64_t, int64_t> share(int64_t b) const;
  Batch make_batch(int64_t b, int64_t epoch) const;
  Slot make_slot(int64_t b, int64_t epoch);
  std::optional<Slot> take_slot();  // the pass's next slot, in order; nullopt at its end
  Batch deliver(Slot slot);
  std::optional<Batch> next_uploaded();
  Staged stage_next();  // takes the next batch and queues its upload on the copy stream
  Staged upload(Slot slot);
  void worker_loop(int64_t epoch);
  void stop_workers();
  PinnedBuffer take_pinned(size_t bytes);
  void give_back_pinned(PinnedBuffer buffer);

  DatasetPtr dataset_;
  LoaderOptions options_;
  bool pinned_upload_ = false;

  // The pass.
  int64_t epoch_ = 0;
  bool epoch_used_ = false;  // a pass has run with epoch_ (the next one takes epoch_ + 1)
  bool active_ = false;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0;

  // Shared with the workers, under mu_.
  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  bool stop_ = false;
  int64_t next_claim_ = 0, next_consume_ = 0;
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> workers_;

  // Decoded cache: slot i is written only by the thread that builds the batch holding index i,
  // and a pass's workers are joined before the next pass starts.
  mutable std::vector<Sample> cache_;
  mutable std::atomic<int64_t> cached_{0};

  std::mutex pinned_mu_;
  std::vector<PinnedBuffer> pinned_free_;
  std::optional<Staged> ahead_;  // consumer thread only
};

}  // namespace ember::data
