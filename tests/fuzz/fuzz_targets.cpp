// The parsers behind each fuzz target, and seeds from ember's own writers. File-based readers get
// the input through a file in a per-process temporary folder.
#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "apps/common/checkpoint_meta.h"
#include "apps/common/predictions.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

namespace ember::fuzz {

namespace {

namespace fs = std::filesystem;

// A folder for this process's input files, with images/a.png for the TSV target; removed at exit.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("ember_fuzz_" + std::to_string(::getpid()));
  ScratchDir() {
    fs::create_directories(path / "images");
    data::write_png((path / "images" / "a.png").string(), full({3, 2, 2}, 100, DType::u8));
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
const fs::path& scratch() {
  static const ScratchDir dir;
  return dir.path;
}

std::string to_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (scratch() / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  return path;
}

std::vector<uint8_t> from_file(const std::string& path) { return data::read_file_bytes(path); }
std::vector<uint8_t> from_text(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

// Reads every byte of a tensor (sanitizers see an over-read).
void touch(const Tensor& t) {
  volatile uint64_t sink = 0;
  const uint8_t* p = static_cast<const uint8_t*>(t.data_ptr());
  for (size_t i = 0; i < t.nbytes(); ++i) sink = sink + p[i];
}

template <class Fn>
void expect_parse_or_error(Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
  }
}

// ---- safetensors --------------------------------------------------------------------------------
void run_safetensors(const uint8_t* d, size_t n) {
  const std::string path = to_file("input.safetensors", d, n);
  expect_parse_or_error([&] {
    nn::SafetensorsFile f = nn::load_safetensors(path);
    for (const auto& entry : f.tensors) touch(entry.second);
  });
}
std::vector<std::vector<uint8_t>> seeds_safetensors() {
  const std::string path = (scratch() / "seed.safetensors").string();
  nn::StateDict dict = {{"w", full({2, 3}, 0.5)}, {"n", full({4}, 3, DType::i64)}, {"b", full({1}, 1, DType::boolean)}};
  nn::save_safetensors(path, dict, {{"epoch", "3"}, {"model", "effnet_tiny"}});
  return {from_file(path)};
}

// ---- JPEG / PNG -------------------------------------------------------------------------------
void run_image(const uint8_t* d, size_t n) {
  expect_parse_or_error([&] { data::read_image_info(d, n, "fuzz-input"); });
  expect_parse_or_error([&] { touch(data::decode_image(d, n, "fuzz-input")); });
}
std::vector<std::vector<uint8_t>> seeds_image() {
  Tensor px = arange(0, 3 * 8 * 6, 1, DType::i64).to(DType::u8).reshape({3, 8, 6});
  Tensor gray = arange(0, 2 * 16 * 16, 1, DType::i64).to(DType::u8).reshape({2, 16, 16});
  return {data::encode_png(px), data::encode_jpeg(px, 90), data::encode_png(gray),
          data::encode_jpeg(gray.narrow(0, 0, 1).contiguous(), 50)};
}

// ---- competition TSV --------------------------------------------------------------------------
void run_competition_tsv(const uint8_t* d, size_t n) {
  const std::string tsv = to_file("train_master.tsv", d, n);
  expect_parse_or_error([&] {
    data::CompetitionDataset ds((scratch() / "images").string(), tsv);
    volatile size_t sink = ds.class_names().size();
    (void)sink;
    for (int64_t i = 0; i < ds.size(); ++i) ds.label(i);
  });
}
std::vector<std::vector<uint8_t>> seeds_competition_tsv() {
  return {from_text("file_name\tlabel_id\na.png\t3\na.png\t0\n"),
          from_text("label_id\tfile_name\tsource\r\n7\ta.png\tx\r\n\r\n")};
}

// ---- prediction CSV ---------------------------------------------------------------------------
void run_predictions_csv(const uint8_t* d, size_t n) {
  const std::string path = to_file("predictions.csv", d, n);
  expect_parse_or_error([&] {
    apps::Predictions p = apps::read_predictions(path);
    apps::accuracy(p);
    apps::log_loss(p);
  });
}
std::vector<std::vector<uint8_t>> seeds_predictions_csv() {
  apps::Predictions p;
  p.names = {"a.png", "b.png"};
  p.labels = {1, -1};
  p.num_classes = 3;
  p.probs = {0.25, 0.5, 0.25, 0.1, 0.1, 0.8};
  const std::string path = (scratch() / "seed.csv").string();
  apps::write_predictions(path, p);
  return {from_file(path)};
}

// ---- CIFAR binary (records by file name) and its class-name lists ------------------------------
// The input as a CIFAR-10 batch and as a CIFAR-100 file; every record's image is read.
void read_all(const data::CifarBinaryDataset& ds) {
  for (int64_t i = 0; i < ds.size(); ++i) touch(ds.get(i).image);
}
void run_cifar_binary(const uint8_t* d, size_t n) {
  for (const char* name : {"cifar10/data_batch_1.bin", "cifar100/train.bin"}) {
    fs::create_directories((scratch() / name).parent_path());
    const std::string path = to_file(name, d, n);
    expect_parse_or_error([&] { read_all(data::CifarBinaryDataset(path)); });
  }
}
// Two records of each release's layout: label byte(s), then 3072 pixel bytes.
std::vector<uint8_t> cifar_records(int label_bytes) {
  std::vector<uint8_t> bytes;
  for (int r = 0; r < 2; ++r) {
    for (int l = 0; l < label_bytes; ++l) bytes.push_back(static_cast<uint8_t>(3 + r + l));
    for (int i = 0; i < 3072; ++i) bytes.push_back(static_cast<uint8_t>(i * 7 + r));
  }
  return bytes;
}
std::vector<std::vector<uint8_t>> seeds_cifar_binary() { return {cifar_records(1), cifar_records(2)}; }

// The input as batches.meta.txt beside a valid CIFAR-10 batch: the class names it gives.
void run_class_list(const uint8_t* d, size_t n) {
  fs::create_directories(scratch() / "meta");
  static const bool batch_written = [] {
    const std::vector<uint8_t> one = cifar_records(1);
    std::ofstream((scratch() / "meta" / "data_batch_1.bin").string(), std::ios::binary)
        .write(reinterpret_cast<const char*>(one.data()), static_cast<std::streamsize>(one.size()));
    return true;
  }();
  (void)batch_written;
  to_file("meta/batches.meta.txt", d, n);
  expect_parse_or_error([&] {
    data::CifarBinaryDataset ds((scratch() / "meta" / "data_batch_1.bin").string());
    volatile size_t sink = 0;
    for (const std::string& c : ds.class_names()) sink = sink + c.size();
  });
}
std::vector<std::vector<uint8_t>> seeds_class_list() {
  return {from_text("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"),
          from_text("a\r\nb\r\n\r\nc\n")};
}

// ---- checkpoint metadata (key=value lines) ----------------------------------------------------
void run_checkpoint_meta(const uint8_t* d, size_t n) {
  std::map<std::string, std::string> meta;
  std::string text(reinterpret_cast<const char*>(d), n), line;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    line = text.substr(start, end - start);
    if (size_t eq = line.find('='); eq != std::string::npos) meta[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  apps::CheckpointMeta m("fuzz-input", meta);
  for (const char* key : {"format", "model"}) expect_parse_or_error([&] { m.text(key); });
  for (const char* key : {"num_classes", "resolution", "epoch", "iteration"})
    expect_parse_or_error([&] { m.integer(key); });
  expect_parse_or_error([&] { m.unsigned_integer("rng_offset"); });
  expect_parse_or_error([&] { m.real("best_val_acc"); });
}
std::vector<std::vector<uint8_t>> seeds_checkpoint_meta() {
  return {from_text("format=ember-checkpoint-1\nmodel=effnet_tiny\nnum_classes=20\nresolution=32\nepoch=3\n"
                    "iteration=48\nbest_val_acc=0.412500\nrng_offset=123456789\n")};
}

}  // namespace

const std::vector<FuzzTarget>& fuzz_targets() {
  static const std::vector<FuzzTarget> targets = {
      {"safetensors", run_safetensors, seeds_safetensors},
      {"image", run_image, seeds_image},
      {"competition_tsv", run_competition_tsv, seeds_competition_tsv},
      {"predictions_csv", run_predictions_csv, seeds_predictions_csv},
      {"checkpoint_meta", run_checkpoint_meta, seeds_checkpoint_meta},
      {"cifar_binary", run_cifar_binary, seeds_cifar_binary},
      {"class_list", run_class_list, seeds_class_list},
  };
  return targets;
}

const FuzzTarget& fuzz_target(const std::string& name) {
  for (const FuzzTarget& t : fuzz_targets())
    if (name == t.name) return t;
  throw make_error("fuzz_target: no target named '", name, "'");
}

}  // namespace ember::fuzz
