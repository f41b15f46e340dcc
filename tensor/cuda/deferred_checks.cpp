#include "tensor/cuda/deferred_checks.h"

namespace ember {

DeferredChecks::~DeferredChecks() {
  try {
    for (Entry& e : entries_) events_.destroy_event(e.event);
    for (auto& [stream, events] : event_pool_)
      for (void* e : events) events_.destroy_event(e);
  } catch (...) {  // a destructor must not throw
  }
}

void DeferredChecks::add(void* stream, std::function<void()> check) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    void* event = nullptr;
    auto& pool = event_pool_[stream];
    if (!pool.empty()) {
      event = pool.back();
      pool.pop_back();
    } else {
      event = events_.create_event(stream);
    }
    events_.record_event(event, stream);
    entries_.push_back(Entry{event, stream, std::move(check)});
  }
  poll();  // earlier checks whose work is done report now
}

bool DeferredChecks::take_ready(Entry& out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!events_.query_event(it->event)) continue;
    out = std::move(*it);
    entries_.erase(it);
    event_pool_[out.stream].push_back(out.event);
    return true;
  }
  return false;
}

void DeferredChecks::poll() {
  // Each check runs outside the lock: it may read tensors, which may poll again.
  for (Entry e; take_ready(e);) {
    std::function<void()> check = std::move(e.check);
    check();
  }
}

void DeferredChecks::flush() {
  std::vector<void*> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Entry& e : entries_) events.push_back(e.event);
  }
  for (void* e : events) events_.synchronize_event(e);
  poll();
}

size_t DeferredChecks::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace ember
