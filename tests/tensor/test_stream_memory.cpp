// Stream-safe memory and host syncs (issue 9, items 2 and 3).
//
// On the CPU: the CachingAllocator and DeferredChecks driven through their StreamEvents seam by
// a fake whose streams finish their work only when the test says so — reuse on the same stream
// at once, reuse across streams deferred until each stream has passed the free, several streams,
// empty_cache with pending blocks, the out-of-memory retry, the statistics, events reused — and
// the host-sync counter's mechanism. On a GPU (skipped visibly here): the same with real streams
// and events, a copy between two devices, and the counter around real syncs.
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "tensor/allocator.h"
#include "tensor/cuda/deferred_checks.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::error_of;
using ember::testing::random_tensor;

namespace {

// Streams are any distinct pointers. Each record_event marks a point in its stream's work; the
// stream has done the work up to complete(stream) (all of it) or complete_to(stream, n).
class FakeEvents final : public StreamEvents {
 public:
  struct Event {
    void* created_for = nullptr;
    void* stream = nullptr;
    int point = -1;  // -1: never recorded (done, like a fresh cudaEvent_t)
  };
  void* create_event(void* stream) override {
    auto* e = new Event{stream};
    live.insert(e);
    created++;
    return e;
  }
  void record_event(void* event, void* stream) override {
    if (fail_records) throw Error("CUDA error in cudaEventRecord: an illegal memory access was encountered");
    auto* e = static_cast<Event*>(event);
    EXPECT_TRUE(live.count(e)) << "record on a destroyed event";
    EXPECT_EQ(e->created_for, stream) << "an event recorded on a stream it was not created for";
    e->stream = stream;
    e->point = ++queued[stream];
    records++;
  }
  bool query_event(void* event) override {
    auto* e = static_cast<Event*>(event);
    EXPECT_TRUE(live.count(e)) << "query of a destroyed event";
    queries++;
    return e->point < 0 || done[e->stream] >= e->point;
  }
  void synchronize_event(void* event) override {
    auto* e = static_cast<Event*>(event);
    syncs++;
    if (e->point >= 0) done[e->stream] = std::max(done[e->stream], e->point);
  }
  void destroy_event(void* event) override {
    auto* e = static_cast<Event*>(event);
    EXPECT_TRUE(live.erase(e)) << "double destroy";
    delete e;
  }
  void complete(void* stream) { done[stream] = queued[stream]; }
  ~FakeEvents() override {
    for (Event* e : live) delete e;
  }

  std::map<void*, int> queued, done;
  std::set<Event*> live;
  int created = 0, records = 0, queries = 0, syncs = 0;
  bool fail_records = false;  // as every CUDA call does after a kernel fault
};

// Host memory with a capacity (nullptr past it, like cudaMalloc out of memory), with FakeEvents.
class FakeRaw final : public RawAllocator {
 public:
  explicit FakeRaw(FakeEvents* events, size_t capacity = SIZE_MAX) : events_(events), capacity_(capacity) {}
  void* raw_allocate(size_t n) override {
    if (used + n > capacity_) return nullptr;
    used += n;
    allocs++;
    void* p = std::malloc(n);
    sizes[p] = n;
    return p;
  }
  void raw_free(void* p) override {
    used -= sizes.at(p);
    sizes.erase(p);
    frees++;
    std::free(p);
  }
  Device device() const override { return Device::cpu(); }
  StreamEvents* events() override { return events_; }

  size_t used = 0;
  int allocs = 0, frees = 0;
  std::map<void*, size_t> sizes;

 private:
  FakeEvents* events_;
  size_t capacity_;
};

struct Fixture {
  explicit Fixture(size_t capacity = SIZE_MAX) {
    auto r = std::make_unique<FakeRaw>(&events, capacity);
    raw = r.get();
    alloc = std::make_unique<CachingAllocator>(std::move(r));
  }
  FakeEvents events;  // outlives the allocator (declared first)
  FakeRaw* raw = nullptr;
  std::unique_ptr<CachingAllocator> alloc;
  int s0_ = 0, s1_ = 0, s2_ = 0;
  void* s0 = &s0_;  // the allocation stream ("compute")
  void* s1 = &s1_;  // others ("copy", another device's)
  void* s2 = &s2_;
};

}  // namespace

TEST(StreamMemory, SameStreamReuseIsImmediateAndNeedsNoEvent) {
  Fixture f;
  void* a = f.alloc->allocate(1000, f.s0);
  f.alloc->record_stream(a, f.s0);  // its own stream: nothing to wait for
  f.alloc->deallocate(a, 1000, f.s0);
  EXPECT_EQ(f.alloc->allocate(1000, f.s0), a);
  EXPECT_EQ(f.events.created, 0);
  EXPECT_EQ(f.alloc->stats().deferred_frees, 0u);
  EXPECT_EQ(f.alloc->stats().reuses, 1u);
  f.alloc->deallocate(a, 1000, f.s0);
}

TEST(StreamMemory, ReuseWaitsUntilTheOtherStreamHasPassedTheFree) {
  Fixture f;
  void* a = f.alloc->allocate(1000, f.s0);
  f.alloc->record_stream(a, f.s1);
  f.alloc->record_stream(a, f.s1);  // twice: one event
  f.alloc->deallocate(a, 1000, f.s0);
  EXPECT_EQ(f.events.records, 1);
  AllocatorStats st = f.alloc->stats();
  EXPECT_EQ(st.pending, 1024u);
  EXPECT_EQ(st.cached, 0u);
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(st.deferred_frees, 1u);

  void* b = f.alloc->allocate(1000, f.s0);  // s1 may still read a: a fresh block
  EXPECT_NE(b, a);
  EXPECT_EQ(f.raw->allocs, 2);
  EXPECT_EQ(f.events.syncs, 0) << "the allocator must poll, never wait, while memory is left";

  f.events.complete(f.s1);
  void* c = f.alloc->allocate(1000, f.s0);  // polled: a is back, on its own stream's list
  EXPECT_EQ(c, a);
  st = f.alloc->stats();
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.in_use, 2048u);
  EXPECT_EQ(f.raw->allocs, 2);
  EXPECT_EQ(f.events.syncs, 0);

  // Work queued on s1 after the free does not hold the block back: the event marks the free.
  f.alloc->record_stream(c, f.s1);
  f.alloc->deallocate(c, 1000, f.s0);
  f.events.record_event(f.events.create_event(f.s1), f.s1);  // later work on s1, not done
  f.events.done[f.s1] = f.events.queued[f.s1] - 1;            // done up to the free only
  EXPECT_EQ(f.alloc->allocate(1000, f.s0), c);
  f.alloc->deallocate(b, 1000, f.s0);
  f.alloc->deallocate(c, 1000, f.s0);
}

TEST(StreamMemory, BlockReturnsToItsAllocationStreamOnly) {
  Fixture f;
  void* a = f.alloc->allocate(1000, f.s0);
  f.alloc->record_stream(a, f.s1);
  f.alloc->deallocate(a, 1000, f.s0);
  f.events.complete(f.s1);
  void* b = f.alloc->allocate(1000, f.s1);  // s1's own list is empty: a is s0's
  EXPECT_NE(b, a);
  EXPECT_EQ(f.alloc->allocate(1000, f.s0), a);
  f.alloc->deallocate(a, 1000, f.s0);
  f.alloc->deallocate(b, 1000, f.s1);
}

TEST(StreamMemory, SeveralStreamsMustAllHavePassed) {
  Fixture f;
  void* a = f.alloc->allocate(4096, f.s0);
  f.alloc->record_stream(a, f.s1);
  f.alloc->record_stream(a, f.s2);
  f.alloc->deallocate(a, 4096, f.s0);
  EXPECT_EQ(f.events.records, 2);
  f.events.complete(f.s1);
  void* b = f.alloc->allocate(4096, f.s0);
  EXPECT_NE(b, a) << "s2 has not passed the free yet";
  EXPECT_EQ(f.alloc->stats().pending, 4096u);
  f.events.complete(f.s2);
  EXPECT_EQ(f.alloc->allocate(4096, f.s0), a);
  EXPECT_EQ(f.alloc->stats().pending, 0u);
  f.alloc->deallocate(a, 4096, f.s0);
  f.alloc->deallocate(b, 4096, f.s0);
}

TEST(StreamMemory, EventsAreReusedNotCreatedPerFree) {
  Fixture f;
  for (int i = 0; i < 50; ++i) {
    void* a = f.alloc->allocate(1000, f.s0);
    f.alloc->record_stream(a, f.s1);
    f.alloc->deallocate(a, 1000, f.s0);
    f.events.complete(f.s1);
  }
  EXPECT_EQ(f.alloc->stats().deferred_frees, 50u);
  EXPECT_LE(f.events.created, 2);
  EXPECT_EQ(f.events.records, 50);
  EXPECT_EQ(f.raw->allocs, 1);  // the one block, reused 49 times
}

TEST(StreamMemory, EmptyCacheWaitsForPendingBlocksAndReturnsEverything) {
  Fixture f;
  void* a = f.alloc->allocate(1000, f.s0);
  void* b = f.alloc->allocate(3u << 20, f.s0);
  void* live = f.alloc->allocate(2000, f.s0);
  f.alloc->record_stream(a, f.s1);
  f.alloc->record_stream(b, f.s2);
  f.alloc->deallocate(a, 1000, f.s0);
  f.alloc->deallocate(b, 3u << 20, f.s0);
  EXPECT_EQ(f.alloc->stats().pending, 1024u + (4u << 20));
  f.alloc->empty_cache();
  EXPECT_EQ(f.events.syncs, 2);  // one wait per pending event, only here
  AllocatorStats st = f.alloc->stats();
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.cached, 0u);
  EXPECT_EQ(st.event_syncs, 1u);
  EXPECT_EQ(f.raw->frees, 2);
  EXPECT_EQ(f.raw->used, 2048u);  // only the live block is still allocated
  EXPECT_EQ(st.in_use, 2048u);
  f.alloc->empty_cache();  // nothing pending: no wait
  EXPECT_EQ(f.events.syncs, 2);
  f.alloc->deallocate(live, 2000, f.s0);
}

TEST(StreamMemory, OutOfMemoryFreesTheCacheThenWaitsForPendingBlocksAndRetries) {
  Fixture f(4u << 20);  // room for two 2 MiB blocks
  void* a = f.alloc->allocate(2u << 20, f.s0);
  void* b = f.alloc->allocate(2u << 20, f.s0);
  f.alloc->record_stream(a, f.s1);
  f.alloc->deallocate(a, 2u << 20, f.s0);
  EXPECT_EQ(f.alloc->stats().pending, 2u << 20);
  // A 2 MiB request on another stream: s0's list cannot serve it, the device is full, nothing
  // is cached; the pending block is waited for, returned, and the retry succeeds.
  void* c = f.alloc->allocate(2u << 20, f.s2);
  ASSERT_NE(c, nullptr);
  AllocatorStats st = f.alloc->stats();
  EXPECT_EQ(st.event_syncs, 1u);
  EXPECT_EQ(f.events.syncs, 1);
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.in_use, 4u << 20);
  EXPECT_EQ(f.raw->frees, 1);
  // Truly out of memory: an Error naming the device and the sizes.
  const std::string what = error_of([&] { f.alloc->allocate(2u << 20, f.s0); });
  EXPECT_NE(what.find("CachingAllocator: out of memory on cpu allocating 2097152 bytes (4194304 bytes in use)"),
            std::string::npos)
      << what;
  f.alloc->deallocate(b, 2u << 20, f.s0);
  f.alloc->deallocate(c, 2u << 20, f.s2);
}

TEST(StreamMemory, OutOfMemoryWithNothingPendingDoesNotWait) {
  Fixture f(4u << 20);
  void* a = f.alloc->allocate(2u << 20, f.s0);
  f.alloc->deallocate(a, 2u << 20, f.s0);       // cached on s0
  void* b = f.alloc->allocate(4u << 20, f.s1);  // needs the cache given back, no event
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(f.alloc->stats().event_syncs, 0u);
  EXPECT_EQ(f.raw->frees, 1);
  f.alloc->deallocate(b, 4u << 20, f.s1);
}

TEST(StreamMemory, DestroyingTheAllocatorWaitsForPendingBlocksAndFreesEvents) {
  auto events = std::make_unique<FakeEvents>();
  {
    auto raw = std::make_unique<FakeRaw>(events.get());
    FakeRaw* r = raw.get();
    CachingAllocator alloc(std::move(raw));
    int s0 = 0, s1 = 0;
    void* a = alloc.allocate(1000, &s0);
    alloc.record_stream(a, &s1);
    alloc.deallocate(a, 1000, &s0);
    void* b = alloc.allocate(1000, &s0);
    alloc.record_stream(b, &s1);
    alloc.deallocate(b, 1000, &s0);
    events->complete(&s1);
    EXPECT_EQ(alloc.allocate(1000, &s0), a);  // b's event back in the pool, a's too
    (void)r;
    alloc.deallocate(a, 1000, &s0);
  }
  EXPECT_TRUE(events->live.empty()) << events->live.size() << " event(s) left undestroyed";
}

TEST(StreamMemory, AFailingEventDropsTheBlockInsteadOfThrowingFromAFree) {
  Fixture f;
  void* a = f.alloc->allocate(1000, f.s0);
  f.alloc->record_stream(a, f.s1);
  f.events.fail_records = true;  // the device faulted: a Storage destructor must not throw now
  EXPECT_NO_THROW(f.alloc->deallocate(a, 1000, f.s0));
  f.events.fail_records = false;
  AllocatorStats st = f.alloc->stats();
  EXPECT_EQ(st.in_use, 0u);
  EXPECT_EQ(st.pending + st.cached, 0u);  // in no list: never handed out again
  void* b = f.alloc->allocate(1000, f.s0);
  EXPECT_NE(b, a);
  f.alloc->deallocate(b, 1000, f.s0);
  f.raw->raw_free(a);  // the test's own cleanup of the dropped block
}

TEST(StreamMemory, RecordStreamOfAForeignPointerIsAnError) {
  Fixture f;
  int x = 0;
  const std::string what = error_of([&] { f.alloc->record_stream(&x, f.s1); });
  EXPECT_NE(what.find("CachingAllocator::record_stream: "), std::string::npos) << what;
  EXPECT_NE(what.find("is not a live block of the cpu allocator"), std::string::npos) << what;
}

TEST(StreamMemory, WithoutEventsRecordStreamIsANoOpAndReuseIsImmediate) {
  class PlainRaw final : public RawAllocator {
   public:
    void* raw_allocate(size_t n) override { return std::malloc(n); }
    void raw_free(void* p) override { std::free(p); }
    Device device() const override { return Device::cpu(); }
  };
  CachingAllocator alloc(std::make_unique<PlainRaw>());
  int s1 = 0;
  void* a = alloc.allocate(1000);
  alloc.record_stream(a, &s1);
  alloc.deallocate(a, 1000);
  EXPECT_EQ(alloc.allocate(1000), a);
  EXPECT_EQ(alloc.stats().deferred_frees, 0u);
  alloc.deallocate(a, 1000);
}

TEST(StreamMemory, TensorRecordStreamIsANoOpOnTheCpu) {
  Tensor t = random_tensor({4, 4}, DType::f32);
  int s = 0;
  record_stream(t, &s);
  record_stream(Tensor(), &s);
  EXPECT_EQ(t.storage()->stream(), nullptr);
}

// ---- deferred checks ----------------------------------------------------------------------

TEST(DeferredChecks, RunOnceTheirWorkIsDoneInOrderAndThrowOnce) {
  FakeEvents events;
  int s0 = 0, s1 = 0;
  std::vector<int> ran;
  {
    DeferredChecks checks(events);
    checks.add(&s0, [&] { ran.push_back(1); });
    checks.add(&s1, [&] { ran.push_back(2); });
    checks.add(&s0, [&] { throw Error("bad class id 7"); });
    checks.add(&s0, [&] { ran.push_back(4); });
    EXPECT_EQ(checks.pending(), 4u);
    checks.poll();  // nothing done yet: nothing runs, nothing waits
    EXPECT_TRUE(ran.empty());
    EXPECT_EQ(events.syncs, 0);
    events.complete(&s1);
    checks.poll();
    EXPECT_EQ(ran, std::vector<int>{2});
    events.complete(&s0);
    EXPECT_EQ(error_of([&] { checks.poll(); }), "bad class id 7");  // after running check 1
    EXPECT_EQ(ran, (std::vector<int>{2, 1}));
    EXPECT_EQ(checks.pending(), 1u);  // the failing one is gone, the last one waits for the next poll
    checks.poll();
    EXPECT_EQ(ran, (std::vector<int>{2, 1, 4}));
    EXPECT_EQ(checks.pending(), 0u);
    EXPECT_EQ(events.syncs, 0);

    checks.add(&s0, [&] { ran.push_back(5); });
    checks.flush();  // waits (a host sync) and runs it
    EXPECT_EQ(events.syncs, 1);
    EXPECT_EQ(ran.back(), 5);
    checks.flush();  // nothing pending: no wait
    EXPECT_EQ(events.syncs, 1);
    EXPECT_EQ(events.created, 4);  // one per check in flight at once (three on s0, one on s1), then reused

    checks.add(&s0, [&] { ran.push_back(6); });  // dropped, not run, at destruction
  }
  EXPECT_EQ(ran.back(), 5);
  EXPECT_TRUE(events.live.empty());
}

TEST(DeferredChecks, AddingPollsTheEarlierOnes) {
  FakeEvents events;
  DeferredChecks checks(events);
  int s0 = 0;
  checks.add(&s0, [] { throw Error("cross_entropy: target class id 9 (row 0) is out of range for 5 classes"); });
  events.complete(&s0);
  // The next call that adds a check reports the earlier one (its own stays pending).
  EXPECT_EQ(error_of([&] { checks.add(&s0, [] {}); }),
            "cross_entropy: target class id 9 (row 0) is out of range for 5 classes");
  EXPECT_EQ(checks.pending(), 1u);
}

// ---- the host-sync counter ------------------------------------------------------------------

TEST(HostSyncs, CounterCountsResetsAndRemembersWhere) {
  cuda::reset_host_sync_count();
  EXPECT_EQ(cuda::host_sync_count(), 0u);
  cuda::note_host_sync("first");
  cuda::note_host_sync("second");
  EXPECT_EQ(cuda::host_sync_count(), 2u);
  EXPECT_EQ(cuda::host_sync_reasons(), (std::vector<std::string>{"first", "second"}));
  for (int i = 0; i < 100; ++i) cuda::note_host_sync("many");
  EXPECT_EQ(cuda::host_sync_count(), 102u);
  EXPECT_EQ(cuda::host_sync_reasons().size(), 64u);  // the first 64 are kept
  cuda::reset_host_sync_count();
  EXPECT_EQ(cuda::host_sync_count(), 0u);
  EXPECT_TRUE(cuda::host_sync_reasons().empty());
}

TEST(HostSyncs, CpuWorkCountsNone) {
  cuda::reset_host_sync_count();
  Tensor a = random_tensor({64, 64}, DType::f32);
  Tensor b = matmul(a, a);
  EXPECT_GT(sum(b).item() + 1, -1e30);  // a scalar read on the CPU is no sync
  (void)b.to_vector<float>();
  EXPECT_EQ(cuda::host_sync_count(), 0u);
  if (!cuda::is_available()) {
    EXPECT_EQ(cuda::deferred_check_count(), 0u);
    cuda::poll_deferred_checks();  // harmless without CUDA
    cuda::flush_deferred_checks();
  }
}

// ---- on a GPU -------------------------------------------------------------------------------

TEST(HostSyncsCuda, ReadsCountAndUploadsFromTensorsAreCountedAsPossibleWaits) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  Tensor x = random_tensor({256}, DType::f32).to(gpu);  // pageable upload: CUDA may wait
  cuda::synchronize();
  cuda::reset_host_sync_count();
  Tensor y = mul(x, 2.0);
  Tensor s = sum(y);
  EXPECT_EQ(cuda::host_sync_count(), 0u) << "launches alone must not wait";
  (void)s.item();
  EXPECT_EQ(cuda::host_sync_count(), 1u);
  (void)y.cpu();
  EXPECT_EQ(cuda::host_sync_count(), 2u);
  cuda::synchronize();
  EXPECT_EQ(cuda::host_sync_count(), 3u);
  (void)random_tensor({8}, DType::f32).to(gpu);
  EXPECT_EQ(cuda::host_sync_count(), 4u);
  const auto why = cuda::host_sync_reasons();
  ASSERT_EQ(why.size(), 4u);
  EXPECT_NE(why[0].find("copy to the host"), std::string::npos) << why[0];
  EXPECT_NE(why[2].find("cuda::synchronize"), std::string::npos) << why[2];
  EXPECT_NE(why[3].find("pageable"), std::string::npos) << why[3];
}

TEST(StreamMemoryCuda, BlockUsedOnTheCopyStreamIsNotReusedBeforeTheCopyStreamPassesIt) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  cuda::set_device(0);
  Allocator& alloc = cuda::caching_allocator(0);
  void* compute = cuda::current_stream();
  void* copy = cuda::copy_stream();
  ASSERT_NE(compute, copy);
  EXPECT_EQ(cuda::stream_device(copy), 0);
  alloc.empty_cache();  // only this test's blocks in the cache
  // A big buffer written on the copy stream (a queue of copies), freed on the host right away.
  Tensor src = random_tensor({1 << 22}, DType::f32).to(gpu);
  Tensor buf = empty({1 << 22}, DType::f32, gpu);
  cuda::synchronize();
  for (int i = 0; i < 20; ++i)
    cuda::copy_bytes_async(buf.data_ptr(), src.data_ptr(), buf.nbytes(), cuda::CopyKind::device_to_device, copy);
  void* old = buf.data_ptr();
  const AllocatorStats before = alloc.stats();
  record_stream(buf, copy);
  buf = Tensor();  // the copy stream may still be writing it
  EXPECT_EQ(alloc.stats().deferred_frees, before.deferred_frees + 1);
  cuda::stream_synchronize(copy);
  Tensor again = empty({1 << 22}, DType::f32, gpu);  // polled: back on the compute stream's list
  EXPECT_EQ(again.data_ptr(), old);
  EXPECT_EQ(alloc.stats().pending, 0u);
}

TEST(StreamMemoryCuda, CopyBetweenDevicesWaitsForTheSourceStream) {
  EMBER_REQUIRE_CUDA();
  if (cuda::device_count() < 2) GTEST_SKIP() << "CUDA test skipped: needs two GPUs, found " << cuda::device_count();
  Tensor x = random_tensor({1 << 20}, DType::f32);
  Tensor a = x.to(Device::cuda(0));
  // Work queued on device 0 that the copy must wait for, then the copy; the staging copy of a
  // strided source is freed while the copy may still read it.
  Tensor b = mul(a, 3.0);
  Tensor c = b.view({1024, 1024}).t().to(Device::cuda(1));
  EXPECT_TRUE(all_close(c.cpu(), mul(x, 3.0).view({1024, 1024}).t().contiguous(), 0, 0));
  Tensor d = b.to(DType::f64).to(Device::cuda(1));
  EXPECT_TRUE(all_close(d.cpu(), mul(x, 3.0).to(DType::f64), 0, 0));
}
