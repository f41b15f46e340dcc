// GradientSync: buckets all-reduced as backward completes them (see gradient_sync.h).
#include "dist/gradient_sync.h"

#include <chrono>

#include "tensor/error.h"

namespace ember::dist {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

GradientSync::GradientSync(nn::Module& model, std::shared_ptr<ProcessGroup> group, int64_t bucket_bytes,
                           int64_t first_bucket_bytes)
    : model_(model), group_(std::move(group)), bucket_bytes_(bucket_bytes), first_bucket_bytes_(first_bucket_bytes) {
  EMBER_CHECK(group_ != nullptr, "GradientSync: no process group");
  EMBER_CHECK(bucket_bytes > 0 && first_bucket_bytes > 0, "GradientSync: bucket sizes must be positive, got ",
              first_bucket_bytes, " (first) and ", bucket_bytes, " bytes");
}

GradientSync::~GradientSync() {
  for (Bucket& b : buckets_)
    for (Variable& p : b.params) p.set_grad_ready_hook(nullptr);
}

std::vector<Variable> GradientSync::trainable() const {
  std::vector<Variable> params;
  for (const Variable& p : model_.parameters())
    if (p.requires_grad()) params.push_back(p);
  return params;
}

// Reverse registration order; a new bucket where the dtype or the device changes or the bucket would outgrow
// its size (the first's is first_bucket_bytes_). Each parameter's hook names its bucket.
void GradientSync::cut_buckets(const std::vector<Variable>& params) {
  for (Bucket& b : buckets_)
    for (Variable& p : b.params) p.set_grad_ready_hook(nullptr);
  buckets_.clear();
  layout_.clear();
  int64_t bytes = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Variable p = *it;
    const int64_t n = static_cast<int64_t>(p.data().nbytes());
    const int64_t cap = buckets_.size() == 1 ? first_bucket_bytes_ : bucket_bytes_;
    if (buckets_.empty() || p.dtype() != buckets_.back().params.front().dtype() ||
        p.device() != buckets_.back().params.front().device() || bytes + n > cap) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(p);
    bytes += n;
    const size_t index = buckets_.size() - 1;
    p.set_grad_ready_hook([this, index] { on_gradient_ready(index); });
    layout_.push_back(p.impl());
  }
  for (Bucket& b : buckets_) {
    int64_t total = 0;
    for (const Variable& p : b.params) total += p.numel();
    b.flat = empty({total}, b.params.front().dtype(), b.params.front().device());
  }
}

std::vector<int64_t> GradientSync::bucket_sizes() const {
  std::vector<int64_t> sizes;
  for (const Bucket& b : buckets_) sizes.push_back(static_cast<int64_t>(b.params.size()));
  return sizes;
}

void GradientSync::backward(const Variable& loss) {
  if (!enabled_) {  // no_sync: the gradients add up locally
    loss.backward();
    stats_ = GradientSyncStats{};
    return;
  }
  EMBER_CHECK(!broken_, "GradientSync::backward: an earlier backward failed with all_reduces in flight; the "
              "process group cannot be used again (stop the program)");
  const std::vector<Variable> params = trainable();
  std::vector<VariableImpl*> layout;
  for (auto it = params.rbegin(); it != params.rend(); ++it) layout.push_back(it->impl());
  if (layout != layout_) cut_buckets(params);
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.work.reset();
  }
  next_start_ = 0;
  started_at_.clear();
  stats_ = GradientSyncStats{};

  backward_start_ = now_seconds();
  in_backward_ = true;
  try {
    loss.backward();
  } catch (...) {
    in_backward_ = false;
    broken_ = next_start_ > 0;  // collectives in flight that no one will complete
    throw;
  }
  in_backward_ = false;
  const double backward_end = now_seconds();
  stats_.backward_seconds = backward_end - backward_start_;
  for (double t : started_at_) stats_.backward_left.push_back(backward_end - t);

  try {
    finish();
  } catch (...) {
    broken_ = true;
    throw;
  }
  stats_.wait_seconds = now_seconds() - backward_end;
}

void GradientSync::on_gradient_ready(size_t bucket) {
  if (!in_backward_) return;  // a plain loss.backward() on the same model
  Bucket& b = buckets_[bucket];
  EMBER_CHECK(b.ready < static_cast<int64_t>(b.params.size()), "GradientSync: bucket ", bucket,
              " got more ready gradients than it has parameters");
  ++b.ready;
  if (bucket == next_start_ && b.ready == static_cast<int64_t>(b.params.size())) start_ready_buckets();
  poll();
}

void GradientSync::start_ready_buckets() {
  while (next_start_ < buckets_.size() &&
         buckets_[next_start_].ready == static_cast<int64_t>(buckets_[next_start_].params.size()))
    start(buckets_[next_start_++]);
}

// Copies the bucket's gradients (zeros for a missing one) into its flat buffer and starts the
// averaging all_reduce. On a GPU the copies are enqueued on the current stream, after the
// kernels that produced the gradients, and NCCL's all_reduce waits for them (nccl_group.h).
void GradientSync::start(Bucket& b) {
  copy_gradients_to_flat(b.params, b.flat);
  b.work = group_->all_reduce_async(b.flat, ReduceOp::average);
  started_at_.push_back(now_seconds());
  stats_.bucket_bytes.push_back(static_cast<int64_t>(b.flat.nbytes()));
  stats_.bytes += static_cast<int64_t>(b.flat.nbytes());
  ++stats_.buckets;
  if (in_backward_) ++stats_.started_in_backward;
}

// Lets MPI move the buckets in flight forward (it does so only inside MPI calls).
void GradientSync::poll() {
  for (size_t i = 0; i < next_start_; ++i)
    if (buckets_[i].work) buckets_[i].work->test();
}

void GradientSync::finish() {
  while (next_start_ < buckets_.size()) start(buckets_[next_start_++]);  // parameters backward did not reach
  for (Bucket& b : buckets_) {
    b.work->wait();  // on a GPU: the current stream now runs after the all_reduce
    b.work.reset();
    copy_flat_to_gradients(b.flat, b.params);
  }
}

}  // namespace ember::dist
