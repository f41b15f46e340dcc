// Datasets: indexable collections of labelled images. Every dataset hands out a Sample whose
// image is a (3, H, W) u8 RGB tensor on the CPU; turning that into float and augmenting it is the
// transforms' job (data/transforms.h), batching it the DataLoader's (data/loader.h).
//
//   CifarBinaryDataset   the CIFAR-10 / CIFAR-100 binary release (label byte(s) + 3072 pixel bytes)
//   ImageFolderDataset   root/<class>/<image>, classes sorted by name, JPEG or PNG
//   CompetitionDataset   an image folder + train_master.tsv (file_name, label_id), SIGNATE layout
//   GeneratedDataset     synthetic, deterministic, learnable but not trivial (no files needed)
//   SubsetDataset        a view of some indices of another dataset (what split() returns)
//
// get() is const and safe to call from several threads at once (the loader's workers do).
//
// Bad files. An unreadable or corrupt image throws ember::Error naming the file. With
// `skip_bad`, a file-backed dataset instead warns once per file on stderr, counts it
// (bad_count()), and leaves it out:
//   - at scan: files whose header is not a JPEG/PNG header are dropped before size() is fixed;
//   - at first touch: a file that fails to decode later (e.g. truncated pixel data) makes get()
//     return a Sample with an undefined image (Sample::ok() is false), and the DataLoader drops
//     such samples from their batch. The file is remembered and never decoded again.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "tensor/tensor.h"

namespace ember::data {

struct Sample {
  Tensor image;  // (3, H, W) u8; undefined for a bad file left out under skip_bad
  int64_t label = -1;
  std::string name;  // where it came from: "cat/0001.jpg", "data_batch_1.bin#17", "generated#5"
  bool ok() const { return image.defined(); }
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t i) const = 0;
  virtual int64_t num_classes() const = 0;
  virtual std::vector<std::string> class_names() const = 0;
  // The label of sample i without decoding its image where the dataset can (used by split()).
  virtual int64_t label(int64_t i) const { return get(i).label; }
  // Files left out or found bad so far (skip_bad); 0 for datasets without files.
  virtual int64_t bad_count() const { return 0; }

 protected:
  void check_index(int64_t i, const char* op) const;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

// ---- CIFAR binary -------------------------------------------------------------------------

enum class CifarSplit { train, test };
enum class Cifar100Labels { coarse, fine };  // coarse: the 20 superclasses; fine: the 100 classes

// A CIFAR binary file is a sequence of records: CIFAR-10 `<label> <3072 pixels>` (data_batch_N.bin,
// test_batch.bin), CIFAR-100 `<coarse> <fine> <3072 pixels>` (train.bin, test.bin); pixels are
// the 1024 red, then green, then blue bytes of a 32x32 image, rows top to bottom.
// `path` is a file (format from its name, else from its size) or a directory holding the
// release's files (data_batch_1..5.bin / test_batch.bin, or train.bin / test.bin). Every file is
// read into memory at construction (CIFAR-10 train: 150 MB).
class CifarBinaryDataset final : public Dataset {
 public:
  explicit CifarBinaryDataset(const std::string& path, CifarSplit split = CifarSplit::train,
                              Cifar100Labels labels = Cifar100Labels::fine);
  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  Sample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }
  std::vector<std::string> class_names() const override { return class_names_; }
  bool is_cifar100() const { return cifar100_; }
  const std::vector<std::string>& files() const { return files_; }

 private:
  struct Record {
    int32_t file;    // index into files_ / data_
    int64_t offset;  // byte offset of the record in its file
    int64_t index;   // record number within its file
  };
  void load_file(const std::string& path);
  bool cifar100_ = false;
  Cifar100Labels labels_;
  std::vector<std::string> files_;
  std::vector<std::vector<uint8_t>> data_;
  std::vector<Record> records_;
  std::vector<std::string> class_names_;
};

const std::vector<std::string>& cifar10_class_names();
const std::vector<std::string>& cifar100_fine_class_names();
const std::vector<std::string>& cifar100_coarse_class_names();

// ---- image files ----------------------------------------------------------------------------

struct ImageFileOptions {
  bool skip_bad = false;  // warn, count and leave out bad files instead of throwing
};

// What ImageFolderDataset and CompetitionDataset share: a list of (path, label, name) entries,
// decoding on get(), and the bad-file bookkeeping.
class ImageFileDataset : public Dataset {
 public:
  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  Sample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  int64_t bad_count() const override { return bad_count_.load(); }
  const std::string& path(int64_t i) const;

 protected:
  struct Entry {
    std::string path;  // full path, for opening and in errors
    std::string name;  // relative name, for Sample::name
    int64_t label;
  };
  explicit ImageFileDataset(ImageFileOptions options) : options_(options) {}
  // With skip_bad, drops the entries whose header cannot be read (counting them).
  void screen_headers();
  void mark_bad(const std::string& path, const std::string& why) const;

  ImageFileOptions options_;
  std::vector<Entry> entries_;

 private:
  mutable std::mutex bad_mu_;
  mutable std::unordered_set<std::string> bad_paths_;
  mutable std::atomic<int64_t> bad_count_{0};
};

// root/<class>/<image>: one class per sub-folder, classes sorted by name (label = position),
// images sorted by name within each class. Files that are not .jpg/.jpeg/.png (any case) are
// ignored, as are hidden files and folders.
class ImageFolderDataset final : public ImageFileDataset {
 public:
  explicit ImageFolderDataset(const std::string& root, ImageFileOptions options = {});
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }
  std::vector<std::string> class_names() const override { return class_names_; }

 private:
  std::vector<std::string> class_names_;
};

// SIGNATE competition layout: images in `image_dir`, labels in a tab-separated file whose header
// names at least the columns `file_name` and `label_id` (any order; other columns ignored):
//   file_name<TAB>label_id
//   train_0000.png<TAB>7
// Entries keep the TSV's order. num_classes() = max label + 1 (at least `min_classes`); class
// names are the label ids as text. A missing column, a malformed line, a label_id of
// kMaxClasses or more, a file_name that is absolute or has a '..' component (it would be opened
// outside image_dir), or a listed image that does not exist is an Error naming the TSV and the
// line number.
class CompetitionDataset final : public ImageFileDataset {
 public:
  // The most classes a label file may ask for (label ids 0 .. kMaxClasses-1): far above any real
  // classification task (ImageNet-21k has 21,841), far below what would exhaust memory building
  // one class name per id.
  static constexpr int64_t kMaxClasses = 100000;
  CompetitionDataset(const std::string& image_dir, const std::string& tsv_path, ImageFileOptions options = {},
                     int64_t min_classes = 0);
  // Every .jpg/.jpeg/.png in `image_dir`, sorted by name, label -1: the competition's test set.
  static std::shared_ptr<CompetitionDataset> unlabeled(const std::string& image_dir, int64_t num_classes,
                                                       ImageFileOptions options = {});
  int64_t num_classes() const override { return num_classes_; }
  std::vector<std::string> class_names() const override;

 private:
  explicit CompetitionDataset(ImageFileOptions options) : ImageFileDataset(options) {}
  int64_t num_classes_ = 0;
};

// ---- generated ------------------------------------------------------------------------------

// Synthetic images, a pure function of (seed, index); see generated_dataset.cpp for the recipe.
// Label of sample i: i % num_classes (balanced). num_classes in [2, 120], size in [8, 1024].
class GeneratedDataset final : public Dataset {
 public:
  explicit GeneratedDataset(int64_t n, int64_t num_classes = 20, int64_t size = 32, uint64_t seed = 0);
  int64_t size() const override { return n_; }
  Sample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  int64_t num_classes() const override { return num_classes_; }
  std::vector<std::string> class_names() const override;
  int64_t image_size() const { return size_; }

 private:
  int64_t n_, num_classes_, size_;
  uint64_t seed_;
};

// ---- subsets and splits ----------------------------------------------------------------------

class SubsetDataset final : public Dataset {
 public:
  SubsetDataset(DatasetPtr base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Sample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  int64_t num_classes() const override { return base_->num_classes(); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  int64_t bad_count() const override { return base_->bad_count(); }
  const std::vector<int64_t>& indices() const { return indices_; }
  const DatasetPtr& base() const { return base_; }

 private:
  DatasetPtr base_;
  std::vector<int64_t> indices_;
};

struct TrainValSplit {
  std::shared_ptr<SubsetDataset> train, val;
};

// Holds out round(val_fraction · n) samples as validation, chosen by `seed`. Stratified: the
// fraction is taken within each class (round(val_fraction · n_c) of class c), so both parts keep
// the class balance. Both index lists are sorted; together they are a partition of [0, n).
TrainValSplit split(DatasetPtr dataset, double val_fraction, uint64_t seed, bool stratified = true);

}  // namespace ember::data
