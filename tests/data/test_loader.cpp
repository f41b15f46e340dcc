// DataLoader: coverage of every sample once per epoch, identical batches for any worker count,
// drop_last, bounded prefetch, the decoded cache, bad samples, and errors from workers.
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "data/loader.h"
#include "tests/data/fixtures.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::data;
using ember::testing::values;
namespace fx = ember::testing;

namespace {

// Sample i: a (3, 6, 6) u8 image with pixel (0, 0, 0) = i % 256 and (0, 0, 1) = i / 256, the rest
// random; label i % 5; name "s<i>". Indices in `fail` throw an Error naming a file, indices in
// `bad` come back as bad samples (what a skip_bad dataset does). Counts its get() calls.
class TinyDataset final : public Dataset {
 public:
  explicit TinyDataset(int64_t n, std::set<int64_t> fail = {}, std::set<int64_t> bad = {}, int64_t size = 6)
      : n_(n), fail_(std::move(fail)), bad_(std::move(bad)), size_(size) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 5; }
  std::vector<std::string> class_names() const override { return {"a", "b", "c", "d", "e"}; }
  Sample get(int64_t i) const override {
    check_index(i, "TinyDataset::get");
    gets++;
    if (fail_.count(i)) throw make_error("decode_jpeg: cannot decode '/data/broken_", i, ".jpg': Premature end");
    Sample s;
    s.label = i % 5;
    s.name = "s" + std::to_string(i);
    if (bad_.count(i)) return s;
    auto px = fx::random_pixels(3, size_, size_, static_cast<uint64_t>(i));
    px[0] = static_cast<uint8_t>(i % 256);
    px[1] = static_cast<uint8_t>(i / 256);
    s.image = from_vector<uint8_t>(px, {3, size_, size_});
    return s;
  }
  mutable std::atomic<int64_t> gets{0};

 private:
  int64_t n_;
  std::set<int64_t> fail_, bad_;
  int64_t size_;
};

// Everything a pass produced, for comparing passes.
struct Pass {
  std::vector<int64_t> indices, sizes;
  std::vector<double> images, labels, targets;
};

Pass run_pass(DataLoader& loader) {
  Pass p;
  for (Batch& b : loader) {
    p.indices.insert(p.indices.end(), b.indices.begin(), b.indices.end());
    p.sizes.push_back(b.size());
    auto im = values(b.images), lb = values(b.labels);
    p.images.insert(p.images.end(), im.begin(), im.end());
    p.labels.insert(p.labels.end(), lb.begin(), lb.end());
    if (b.targets.defined()) {
      auto t = values(b.targets);
      p.targets.insert(p.targets.end(), t.begin(), t.end());
    }
  }
  return p;
}

LoaderOptions augmenting(int workers, int prefetch = 2) {
  LoaderOptions o;
  o.batch_size = 7;
  o.num_workers = workers;
  o.prefetch = prefetch;
  o.seed = 11;
  o.transform = Compose{{RandomCrop(6, 2, PadMode::reflect), RandomHorizontalFlip{}, Cutout{2, 0.5}}};
  o.batch_transform = MixupOrCutmix{Mixup{5}, Cutmix{5}};
  return o;
}

}  // namespace

TEST(DataLoader, EverySampleOncePerEpochWithMatchingLabelsAndPixels) {
  auto ds = std::make_shared<TinyDataset>(103);
  DataLoader loader(ds, {.batch_size = 10, .shuffle = true, .num_workers = 3});
  EXPECT_EQ(loader.num_batches(), 11);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<int64_t> seen;
    int64_t batches = 0;
    for (Batch& b : loader) {
      ++batches;
      ASSERT_EQ(b.images.shape(), (Shape{b.size(), 3, 6, 6}));
      ASSERT_EQ(b.images.dtype(), DType::f32);
      ASSERT_EQ(b.labels.dtype(), DType::i64);
      EXPECT_EQ(b.size(), batches == 11 ? 3 : 10);
      auto im = values(b.images);
      auto lb = b.labels.to_vector<int64_t>();
      for (int64_t k = 0; k < b.size(); ++k) {
        const int64_t i = b.indices[k];
        seen.insert(i);
        EXPECT_EQ(lb[k], i % 5);
        EXPECT_EQ(b.names[k], std::string("s").append(std::to_string(i)));
        EXPECT_NEAR(im[k * 108] * 255.0, i % 256, 1e-3);  // pixel values scaled to [0, 1]
        EXPECT_NEAR(im[k * 108 + 1] * 255.0, i / 256, 1e-3);
      }
    }
    EXPECT_EQ(batches, 11);
    EXPECT_EQ(seen.size(), 103u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 103u) << "an index came twice";
  }
}

TEST(DataLoader, SameBatchesWhateverTheWorkerCount) {
  auto ds = std::make_shared<TinyDataset>(40);
  DataLoader reference(ds, augmenting(0));
  Pass ref0 = run_pass(reference), ref1 = run_pass(reference);
  EXPECT_EQ(reference.epoch(), 1);
  EXPECT_NE(ref0.indices, ref1.indices) << "epochs should shuffle differently";
  EXPECT_FALSE(ref0.targets.empty());
  for (auto [workers, prefetch] : {std::pair{1, 1}, {2, 1}, {3, 2}, {4, 4}}) {
    SCOPED_TRACE("workers " + std::to_string(workers) + " prefetch " + std::to_string(prefetch));
    DataLoader loader(ds, augmenting(workers, prefetch));
    Pass p0 = run_pass(loader), p1 = run_pass(loader);
    EXPECT_EQ(p0.indices, ref0.indices);
    EXPECT_EQ(p0.images, ref0.images);  // bit for bit, augmentation included
    EXPECT_EQ(p0.targets, ref0.targets);
    EXPECT_EQ(p1.indices, ref1.indices);
    EXPECT_EQ(p1.images, ref1.images);
  }
  // set_epoch goes back; another seed shuffles differently
  reference.set_epoch(0);
  EXPECT_EQ(run_pass(reference).images, ref0.images);
  LoaderOptions other = augmenting(2);
  other.seed = 12;
  DataLoader reseeded(ds, other);
  EXPECT_NE(run_pass(reseeded).indices, ref0.indices);
}

TEST(DataLoader, DropLastAndPlainOrder) {
  auto ds = std::make_shared<TinyDataset>(25);
  DataLoader keep(ds, {.batch_size = 10, .shuffle = false, .num_workers = 2});
  DataLoader drop(ds, {.batch_size = 10, .shuffle = false, .drop_last = true, .num_workers = 2});
  Pass k = run_pass(keep), d = run_pass(drop);
  EXPECT_EQ(k.sizes, (std::vector<int64_t>{10, 10, 5}));
  EXPECT_EQ(d.sizes, (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(drop.num_batches(), 2);
  std::vector<int64_t> in_order(25);
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(k.indices, in_order);
  EXPECT_EQ(keep.epoch_order(3), in_order);
}

TEST(DataLoader, RanksShareEachGlobalBatchAsOneProcessAtTheWholeBatchSeesIt) {
  // 27 samples, per-rank batch 4: one process at batch 4·N against N ranks at batch 4.
  auto ds = std::make_shared<TinyDataset>(27);
  for (int world : {2, 3}) {
    SCOPED_TRACE("world " + std::to_string(world));
    DataLoader whole(ds, {.batch_size = 4 * world, .num_workers = 1, .seed = 9});
    std::vector<std::vector<Batch>> ranks(world);
    for (int r = 0; r < world; ++r) {
      DataLoader share(ds, {.batch_size = 4, .num_workers = 2, .seed = 9, .rank = r, .world_size = world});
      EXPECT_EQ(share.num_batches(), whole.num_batches());
      for (Batch& b : share) ranks[r].push_back(std::move(b));
    }
    int64_t b = 0;
    for (Batch& w : whole) {
      std::vector<int64_t> indices;
      std::vector<double> images;
      for (int r = 0; r < world; ++r) {
        ASSERT_LT(b, static_cast<int64_t>(ranks[r].size()));
        const Batch& mine = ranks[r][b];
        indices.insert(indices.end(), mine.indices.begin(), mine.indices.end());
        const auto im = values(mine.images);
        images.insert(images.end(), im.begin(), im.end());
      }
      EXPECT_EQ(indices, w.indices) << "global batch " << b;
      EXPECT_EQ(images, values(w.images)) << "global batch " << b << ": augmentation depends on the rank";
      ++b;
    }
  }
  // The tail: 27 = 3·8 + 3 at N = 2 is shared 1 / 2; at N = 6, 27 = 24 + 3 and 3 < 6 images
  // cannot give every rank one, so that tail is dropped on every rank.
  DataLoader r0(ds, {.batch_size = 4, .shuffle = false, .rank = 0, .world_size = 2});
  DataLoader r1(ds, {.batch_size = 4, .shuffle = false, .rank = 1, .world_size = 2});
  EXPECT_EQ(run_pass(r0).sizes, (std::vector<int64_t>{4, 4, 4, 1}));
  EXPECT_EQ(run_pass(r1).sizes, (std::vector<int64_t>{4, 4, 4, 2}));
  DataLoader q(ds, {.batch_size = 4, .shuffle = false, .rank = 5, .world_size = 6});
  EXPECT_EQ(q.num_batches(), 1);
  EXPECT_EQ(run_pass(q).indices, (std::vector<int64_t>{20, 21, 22, 23}));
  EXPECT_NE(fx::error_of([&] { DataLoader bad(ds, {.rank = 2, .world_size = 2}); }).find("rank 2 is not in [0, world_size = 2)"),
            std::string::npos);
}

TEST(DataLoader, NextInterfaceAndAbandonedPasses) {
  auto ds = std::make_shared<TinyDataset>(12);
  DataLoader loader(ds, {.batch_size = 4, .num_workers = 2});
  int n = 0;
  while (auto b = loader.next()) n += static_cast<int>(b->size());
  EXPECT_EQ(n, 12);
  EXPECT_EQ(loader.epoch(), 0);
  auto first = loader.next();  // a new pass: epoch 1
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(loader.epoch(), 1);
  const std::vector<int64_t> order1 = loader.epoch_order(1);
  EXPECT_EQ(first->indices, std::vector<int64_t>(order1.begin(), order1.begin() + 4));
  // breaking out of a range-for abandons the pass; the next one is complete
  for (Batch& b : loader) {
    (void)b;
    break;
  }
  EXPECT_EQ(loader.epoch(), 2);
  EXPECT_EQ(run_pass(loader).indices.size(), 12u);
  EXPECT_EQ(loader.epoch(), 3);
}

TEST(DataLoader, PrefetchIsBounded) {
  auto ds = std::make_shared<TinyDataset>(200);
  DataLoader loader(ds, {.batch_size = 5, .num_workers = 2, .prefetch = 1});
  auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // consumed 1 batch; at most num_workers · prefetch = 2 more may be claimed
  EXPECT_LE(ds->gets.load(), (1 + 2) * 5);
  EXPECT_GE(ds->gets.load(), 2 * 5);
}

TEST(DataLoader, DecodedCacheServesLaterEpochs) {
  auto ds = std::make_shared<TinyDataset>(30);
  DataLoader loader(ds, {.batch_size = 8, .num_workers = 2, .cache_decoded = true});
  Pass p0 = run_pass(loader);
  EXPECT_EQ(ds->gets.load(), 30);
  EXPECT_EQ(loader.cached_count(), 30);
  loader.set_epoch(0);
  Pass again = run_pass(loader);
  EXPECT_EQ(ds->gets.load(), 30) << "the second pass should not touch the dataset";
  EXPECT_EQ(again.images, p0.images);
}

TEST(DataLoader, BadSamplesAreLeftOutOfTheirBatch) {
  auto ds = std::make_shared<TinyDataset>(20, std::set<int64_t>{}, std::set<int64_t>{3, 4, 5, 6, 13});
  DataLoader loader(ds, {.batch_size = 4, .shuffle = false, .num_workers = 2});
  Pass p = run_pass(loader);
  // batch 1 (4..7) keeps only 7; batch 3 (12..15) loses 13
  EXPECT_EQ(p.sizes, (std::vector<int64_t>{3, 1, 4, 3, 4}));
  EXPECT_EQ(p.indices.size(), 15u);
  // a batch made only of bad samples is skipped
  auto all_bad = std::make_shared<TinyDataset>(8, std::set<int64_t>{}, std::set<int64_t>{0, 1, 2, 3});
  DataLoader skip(all_bad, {.batch_size = 4, .shuffle = false, .num_workers = 0});
  EXPECT_EQ(run_pass(skip).sizes, (std::vector<int64_t>{4}));
}

TEST(DataLoader, WorkerErrorsAreRethrownWithTheFileName) {
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    auto ds = std::make_shared<TinyDataset>(24, std::set<int64_t>{17});
    DataLoader loader(ds, {.batch_size = 4, .shuffle = false, .num_workers = workers});
    std::vector<int64_t> delivered;
    bool thrown = false;
    for (;;) {
      try {
        auto b = loader.next();
        if (!b) break;
        delivered.insert(delivered.end(), b->indices.begin(), b->indices.end());
      } catch (const Error& e) {
        thrown = true;
        EXPECT_NE(std::string(e.what()).find("broken_17.jpg"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("sample 17"), std::string::npos) << e.what();
        EXPECT_EQ(delivered.size(), 16u) << "batches before the bad one come first";
      }
    }
    EXPECT_TRUE(thrown);
    EXPECT_EQ(delivered.size(), 20u) << "the pass goes on after the failed batch";
  }
}

TEST(DataLoader, ShapeMismatchAndBadOptionsAreErrors) {
  // images of different sizes cannot be stacked without a Resize or crop
  struct Mixed final : Dataset {
    int64_t size() const override { return 2; }
    int64_t num_classes() const override { return 1; }
    std::vector<std::string> class_names() const override { return {"x"}; }
    Sample get(int64_t i) const override { return {full({3, 4 + i, 4}, 7, DType::u8), 0, "m" + std::to_string(i)}; }
  };
  DataLoader loader(std::make_shared<Mixed>(), {.batch_size = 2, .shuffle = false, .num_workers = 1});
  try {
    loader.next();
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'m1' has shape [3, 5, 4]"), std::string::npos) << e.what();
  }
  LoaderOptions resized{.batch_size = 2, .shuffle = false, .num_workers = 1};
  resized.transform = Resize(4);
  DataLoader ok(std::make_shared<Mixed>(), resized);
  EXPECT_EQ(ok.next()->images.shape(), (Shape{2, 3, 4, 4}));

  auto ds = std::make_shared<TinyDataset>(4);
  EXPECT_THROW(DataLoader(ds, {.batch_size = 0}), Error);
  EXPECT_THROW(DataLoader(ds, {.num_workers = -1}), Error);
  EXPECT_THROW(DataLoader(nullptr), Error);
  if (!cuda::is_available()) {
    EXPECT_THROW(DataLoader(ds, {.device = Device::cuda()}), Error);
  }
}

TEST(DataLoader, CudaBatchesMatchCpu) {
  EMBER_REQUIRE_CUDA();
  auto ds = std::make_shared<TinyDataset>(20);
  LoaderOptions cpu_opts = augmenting(2);
  DataLoader cpu_loader(ds, cpu_opts);
  Pass ref = run_pass(cpu_loader);
  for (bool pin : {false, true}) {
    SCOPED_TRACE(pin ? "pinned" : "pageable");
    LoaderOptions o = augmenting(2);
    o.device = Device::cuda();
    o.pin_memory = pin;
    DataLoader loader(ds, o);
    for (Batch& b : loader) {
      EXPECT_TRUE(b.images.device().is_cuda());
      EXPECT_TRUE(b.labels.device().is_cuda());
      EXPECT_TRUE(b.targets.device().is_cuda());
    }
    loader.set_epoch(0);
    Pass got = run_pass(loader);
    EXPECT_EQ(got.images, ref.images);
    EXPECT_EQ(got.labels, ref.labels);
    EXPECT_EQ(got.targets, ref.targets);
    EXPECT_EQ(got.indices, ref.indices);
    EXPECT_EQ(got.sizes, ref.sizes);
  }
}

// The page-locked path uploads one batch ahead on the copy stream: the batches, their order, the
// errors at their turn, bad samples, abandoned passes and the decoded cache are all as on the CPU,
// and next() makes the host wait for nothing.
TEST(DataLoader, CudaPinnedUploadsAheadLikeTheCpuPath) {
  EMBER_REQUIRE_CUDA();
  for (int workers : {0, 2}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    auto ds = std::make_shared<TinyDataset>(24, std::set<int64_t>{17}, std::set<int64_t>{4, 5, 6, 7});
    LoaderOptions cpu_opts{.batch_size = 4, .shuffle = false, .num_workers = workers};
    LoaderOptions gpu_opts = cpu_opts;
    gpu_opts.device = Device::cuda();
    gpu_opts.pin_memory = true;
    DataLoader cpu_loader(ds, cpu_opts), gpu_loader(ds, gpu_opts);
    std::vector<std::string> cpu_events, gpu_events;  // "b<first index>" or "error"
    for (auto [loader, events] : {std::pair{&cpu_loader, &cpu_events}, std::pair{&gpu_loader, &gpu_events}}) {
      for (;;) {
        try {
          cuda::reset_host_sync_count();
          auto b = loader->next();
          if (loader == &gpu_loader) {
            EXPECT_EQ(cuda::host_sync_count(), 0u);
          }
          if (!b) break;
          events->push_back("b" + std::to_string(b->indices.front()) + ":" + std::to_string(values(b->images)[0]));
        } catch (const Error&) {
          events->push_back("error");
        }
      }
    }
    EXPECT_EQ(gpu_events, cpu_events);
    EXPECT_EQ(cpu_events.size(), 5u);  // batch 1 all bad (skipped), batch 4 fails
  }
  // Abandoned passes and a new epoch.
  auto ds = std::make_shared<TinyDataset>(40);
  DataLoader loader(ds, {.batch_size = 8, .num_workers = 2, .cache_decoded = true, .pin_memory = true,
                         .device = Device::cuda()});
  for (int round = 0; round < 3; ++round) {
    for (Batch& b : loader) {
      (void)b;
      break;
    }
  }
  loader.set_epoch(0);
  DataLoader cpu(ds, {.batch_size = 8, .num_workers = 2});
  Pass a = run_pass(loader), b = run_pass(cpu);
  EXPECT_EQ(a.images, b.images);
  EXPECT_EQ(a.indices, b.indices);
}
