// CIFAR-10 / CIFAR-100 binary release (Krizhevsky, 2009), read whole into memory.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "data/image_io.h"

namespace fs = std::filesystem;

namespace ember::data {

namespace {

constexpr int64_t kPixels = 3 * 32 * 32;  // (3, 32, 32) per record

// One name per line from a meta file of the release, if it is there.
std::vector<std::string> read_names(const fs::path& file, size_t expected) {
  std::vector<std::string> names;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != expected) names.clear();
  return names;
}

}  // namespace

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

const std::vector<std::string>& cifar100_fine_class_names() {
  static const std::vector<std::string> names = {
      "apple",      "aquarium_fish", "baby",         "bear",       "beaver",      "bed",         "bee",
      "beetle",     "bicycle",       "bottle",       "bowl",       "boy",         "bridge",      "bus",
      "butterfly",  "camel",         "can",          "castle",     "caterpillar", "cattle",      "chair",
      "chimpanzee", "clock",         "cloud",        "cockroach",  "couch",       "crab",        "crocodile",
      "cup",        "dinosaur",      "dolphin",      "elephant",   "flatfish",    "forest",      "fox",
      "girl",       "hamster",       "house",        "kangaroo",   "keyboard",    "lamp",        "lawn_mower",
      "leopard",    "lion",          "lizard",       "lobster",    "man",         "maple_tree",  "motorcycle",
      "mountain",   "mouse",         "mushroom",     "oak_tree",   "orange",      "orchid",      "otter",
      "palm_tree",  "pear",          "pickup_truck", "pine_tree",  "plain",       "plate",       "poppy",
      "porcupine",  "possum",        "rabbit",       "raccoon",    "ray",         "road",        "rocket",
      "rose",       "sea",           "seal",         "shark",      "shrew",       "skunk",       "skyscraper",
      "snail",      "snake",         "spider",       "squirrel",   "streetcar",   "sunflower",   "sweet_pepper",
      "table",      "tank",          "telephone",    "television", "tiger",       "tractor",     "train",
      "trout",      "tulip",         "turtle",       "wardrobe",   "whale",       "willow_tree", "wolf",
      "woman",      "worm"};
  return names;
}

const std::vector<std::string>& cifar100_coarse_class_names() {
  static const std::vector<std::string> names = {"aquatic_mammals",
                                                 "fish",
                                                 "flowers",
                                                 "food_containers",
                                                 "fruit_and_vegetables",
                                                 "household_electrical_devices",
                                                 "household_furniture",
                                                 "insects",
                                                 "large_carnivores",
                                                 "large_man-made_outdoor_things",
                                                 "large_natural_outdoor_scenes",
                                                 "large_omnivores_and_herbivores",
                                                 "medium_mammals",
                                                 "non-insect_invertebrates",
                                                 "people",
                                                 "reptiles",
                                                 "small_mammals",
                                                 "trees",
                                                 "vehicles_1",
                                                 "vehicles_2"};
  return names;
}

CifarBinaryDataset::CifarBinaryDataset(const std::string& path, CifarSplit split, Cifar100Labels labels)
    : labels_(labels) {
  std::error_code ec;
  fs::path root(path);
  EMBER_CHECK(fs::exists(root, ec), "CifarBinaryDataset: '", path, "' does not exist");
  std::vector<fs::path> files;
  fs::path meta_dir;
  if (fs::is_directory(root, ec)) {
    // The release's tarballs unpack into these folders; accept their parent too.
    for (const char* sub : {"cifar-10-batches-bin", "cifar-100-binary"})
      if (fs::is_directory(root / sub, ec)) root /= sub;
    meta_dir = root;
    if (split == CifarSplit::train) {
      for (int b = 1; b <= 5; ++b) {
        fs::path f = root / ("data_batch_" + std::to_string(b) + ".bin");
        if (fs::exists(f, ec)) files.push_back(f);
      }
      if (files.empty() && fs::exists(root / "train.bin", ec)) files.push_back(root / "train.bin");
    } else {
      if (fs::exists(root / "test_batch.bin", ec)) files.push_back(root / "test_batch.bin");
      else if (fs::exists(root / "test.bin", ec)) files.push_back(root / "test.bin");
    }
    EMBER_CHECK(!files.empty(), "CifarBinaryDataset: no ", split == CifarSplit::train ? "training" : "test",
                " files in '", root.string(), "' (expected ",
                split == CifarSplit::train ? "data_batch_1..5.bin or train.bin" : "test_batch.bin or test.bin", ")");
    cifar100_ = files.front().filename() == "train.bin" || files.front().filename() == "test.bin";
  } else {
    files.push_back(root);
    meta_dir = root.parent_path();
    const std::string name = root.filename().string();
    if (name == "train.bin" || name == "test.bin") {
      cifar100_ = true;
    } else if (name.rfind("data_batch", 0) == 0 || name.rfind("test_batch", 0) == 0) {
      cifar100_ = false;
    } else {  // an unknown name: the record size must tell
      const auto bytes = static_cast<int64_t>(fs::file_size(root, ec));
      const bool fits10 = bytes % (kPixels + 1) == 0, fits100 = bytes % (kPixels + 2) == 0;
      EMBER_CHECK(bytes > 0 && fits10 != fits100, "CifarBinaryDataset: cannot tell whether '", path,
                  "' is CIFAR-10 or CIFAR-100 from its name or its size (", bytes, " bytes)");
      cifar100_ = fits100;
    }
  }
  for (const fs::path& f : files) load_file(f.string());

  if (!cifar100_) {
    class_names_ = read_names(meta_dir / "batches.meta.txt", 10);
    if (class_names_.empty()) class_names_ = cifar10_class_names();
  } else if (labels_ == Cifar100Labels::fine) {
    class_names_ = read_names(meta_dir / "fine_label_names.txt", 100);
    if (class_names_.empty()) class_names_ = cifar100_fine_class_names();
  } else {
    class_names_ = read_names(meta_dir / "coarse_label_names.txt", 20);
    if (class_names_.empty()) class_names_ = cifar100_coarse_class_names();
  }
  // Labels are checked once here, so get() cannot hand out an out-of-range label.
  const int64_t classes = num_classes();
  for (size_t r = 0; r < records_.size(); ++r) {
    const int64_t l = label(static_cast<int64_t>(r));
    EMBER_CHECK(l < classes, "CifarBinaryDataset: '", files_[records_[r].file], "' record ", records_[r].index,
                " has label ", l, ", expected < ", classes, " (is this really a ",
                cifar100_ ? "CIFAR-100" : "CIFAR-10", " file?)");
  }
}

void CifarBinaryDataset::load_file(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  const int64_t record = kPixels + (cifar100_ ? 2 : 1);
  const auto n = static_cast<int64_t>(bytes.size());
  EMBER_CHECK(n > 0 && n % record == 0, "CifarBinaryDataset: '", path, "' has ", n, " bytes, not a multiple of the ",
              cifar100_ ? "CIFAR-100" : "CIFAR-10", " record size ", record, " (truncated or not a CIFAR file)");
  const auto file = static_cast<int32_t>(files_.size());
  for (int64_t r = 0; r < n / record; ++r) records_.push_back({file, r * record, r});
  files_.push_back(path);
  data_.push_back(std::move(bytes));
}

int64_t CifarBinaryDataset::label(int64_t i) const {
  check_index(i, "CifarBinaryDataset::label");
  const Record& r = records_[i];
  const uint8_t* p = data_[r.file].data() + r.offset;
  return cifar100_ && labels_ == Cifar100Labels::fine ? p[1] : p[0];
}

Sample CifarBinaryDataset::get(int64_t i) const {
  check_index(i, "CifarBinaryDataset::get");
  const Record& r = records_[i];
  const uint8_t* pixels = data_[r.file].data() + r.offset + (cifar100_ ? 2 : 1);  // (3, 32, 32)
  Sample s;
  s.image = empty({3, 32, 32}, DType::u8);
  std::memcpy(s.image.data<uint8_t>(), pixels, kPixels);
  s.label = label(i);
  s.name = fs::path(files_[r.file]).filename().string() + "#" + std::to_string(r.index);
  return s;
}

}  // namespace ember::data
