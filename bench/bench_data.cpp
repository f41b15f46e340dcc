// Data pipeline throughput: decode + augment + batch, in images per second.
//
//   loader/jpeg_folder/workers:N   ImageFolderDataset over 2,000 generated 32x32 JPEGs (written to a
//                                  temporary folder at start-up), CIFAR training augmentation
//   loader/generated/workers:N     GeneratedDataset (rendering instead of decoding), same augmentation
//   decode/jpeg_32x32              one JPEG decoded from memory on one thread
//   augment/cifar_train            RandomCrop(32, 4, reflect) + flip + normalize of one image
//   upload/{pageable,pinned}       loader delivering CUDA batches (registered only with a GPU)
//
// Run:  ./bench/bench_data
// Whole-folder measurement (scan, then decode everything with 2 workers, no augmentation):
//       ./bench/bench_data --cifar10_dir=../shared/data/cifar10/train
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "data/image_io.h"
#include "data/loader.h"
#include "tensor/cuda/runtime.h"

using namespace ember;
using namespace ember::data;

namespace {

constexpr int64_t kImages = 2000;

// 2,000 generated images as JPEGs in 20 class folders, written once per process.
const std::string& jpeg_folder() {
  static const std::string root = [] {
    auto dir = std::filesystem::temp_directory_path() / ("ember_bench_data_" + std::to_string(::getpid()));
    GeneratedDataset gen(kImages, 20, 32, 1);
    auto names = gen.class_names();
    for (const auto& n : names) std::filesystem::create_directories(dir / n);
    for (int64_t i = 0; i < kImages; ++i) {
      Sample s = gen.get(i);
      write_jpeg((dir / names[s.label] / (std::to_string(i) + ".jpg")).string(), s.image, 90);
    }
    return dir.string();
  }();
  return root;
}

struct FolderCleanup {
  ~FolderCleanup() {
    auto dir = std::filesystem::temp_directory_path() / ("ember_bench_data_" + std::to_string(::getpid()));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
} cleanup;

Transform cifar_train_transform() {
  return Compose{{RandomCrop(32, 4, PadMode::reflect), RandomHorizontalFlip{}, Normalize::cifar10()}};
}

void run_loader(benchmark::State& state, DatasetPtr dataset, LoaderOptions options) {
  DataLoader loader(dataset, std::move(options));
  int64_t images = 0;
  for (auto _ : state) {
    for (Batch& b : loader) {
      images += b.size();
      benchmark::DoNotOptimize(b.images.data_ptr());
    }
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}

void BM_LoaderJpegFolder(benchmark::State& state) {
  auto dataset = std::make_shared<ImageFolderDataset>(jpeg_folder());
  run_loader(state, dataset,
             {.batch_size = 128, .num_workers = static_cast<int>(state.range(0)), .transform = cifar_train_transform()});
}

void BM_LoaderGenerated(benchmark::State& state) {
  auto dataset = std::make_shared<GeneratedDataset>(kImages, 20, 32, 1);
  run_loader(state, dataset,
             {.batch_size = 128, .num_workers = static_cast<int>(state.range(0)), .transform = cifar_train_transform()});
}

void BM_DecodeJpeg(benchmark::State& state) {
  std::vector<uint8_t> bytes = encode_jpeg(GeneratedDataset(1, 20, 32, 1).get(0).image, 90);
  for (auto _ : state) benchmark::DoNotOptimize(decode_jpeg(bytes.data(), bytes.size(), "bench.jpg").data_ptr());
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bytes"] = static_cast<double>(bytes.size());
}

void BM_Augment(benchmark::State& state) {
  Tensor image = to_float_image(GeneratedDataset(1, 20, 32, 1).get(0).image);
  Transform tf = cifar_train_transform();
  Rng rng(1);
  for (auto _ : state) benchmark::DoNotOptimize(tf(image, rng).data_ptr());
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_LoaderToCuda(benchmark::State& state) {
  auto dataset = std::make_shared<GeneratedDataset>(kImages, 20, 32, 1);
  run_loader(state, dataset,
             {.batch_size = 128, .num_workers = 2, .cache_decoded = true, .pin_memory = state.range(0) != 0,
              .device = Device::cuda()});
}

// One pass over a whole image folder: the scan, then every image decoded with 2 workers.
int measure_folder(const std::string& dir) {
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto dataset = std::make_shared<ImageFolderDataset>(dir);
  auto t1 = clock::now();
  DataLoader loader(dataset, {.batch_size = 500, .shuffle = false, .num_workers = 2});
  int64_t images = 0;
  double sum[3] = {0, 0, 0}, sum_sq[3] = {0, 0, 0}, pixels = 0;
  for (Batch& b : loader) {
    images += b.size();
    const float* p = b.images.data<float>();  // (B, 3, H, W)
    const int64_t plane = b.images.size(2) * b.images.size(3);
    pixels += static_cast<double>(b.size() * plane);
    for (int64_t i = 0; i < b.size(); ++i)
      for (int c = 0; c < 3; ++c)
        for (int64_t k = 0; k < plane; ++k) {
          double v = p[(i * 3 + c) * plane + k];
          sum[c] += v;
          sum_sq[c] += v * v;
        }
  }
  auto t2 = clock::now();
  const double scan = std::chrono::duration<double>(t1 - t0).count();
  const double decode = std::chrono::duration<double>(t2 - t1).count();
  std::cout << "folder: " << dir << "\n"
            << "images: " << images << " in " << dataset->num_classes() << " classes\n"
            << "scan:   " << scan << " s\n"
            << "decode: " << decode << " s with 2 workers (" << static_cast<int64_t>(images / decode) << " img/s)\n"
            << "total:  " << scan + decode << " s\n";
  std::cout << "per-channel mean / std in [0, 1]:";
  for (int c = 0; c < 3; ++c) {
    const double mean = sum[c] / pixels;
    std::cout << " " << mean << " / " << std::sqrt(sum_sq[c] / pixels - mean * mean);
  }
  std::cout << "\n";
  return 0;
}

}  // namespace

BENCHMARK(BM_LoaderJpegFolder)->Name("loader/jpeg_folder")->ArgName("workers")->Arg(1)->Arg(2)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LoaderGenerated)->Name("loader/generated")->ArgName("workers")->Arg(1)->Arg(2)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DecodeJpeg)->Name("decode/jpeg_32x32");
BENCHMARK(BM_Augment)->Name("augment/cifar_train");

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* flag = "--cifar10_dir=";
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) return measure_folder(argv[i] + std::strlen(flag));
  }
  if (cuda::is_available()) {
    benchmark::RegisterBenchmark("upload/pageable", BM_LoaderToCuda)->Arg(0)->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("upload/pinned", BM_LoaderToCuda)->Arg(1)->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
