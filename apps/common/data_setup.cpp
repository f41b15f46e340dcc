#include "apps/common/data_setup.h"

#include <filesystem>

#include "data/transforms.h"
#include "ember/ember.h"

namespace ember::apps {

namespace fs = std::filesystem;

data::DatasetPtr open_dataset(const std::string& path, bool skip_bad, int64_t generated_size, uint64_t seed) {
  if (path.empty()) return std::make_shared<data::GeneratedDataset>(generated_size, 20, 32, seed);
  EMBER_CHECK(fs::exists(path), "--data: '", path, "' does not exist");
  data::ImageFileOptions io;
  io.skip_bad = skip_bad;
  if (fs::is_regular_file(path)) {
    EMBER_CHECK(fs::path(path).extension() == ".bin", "--data: '", path,
                "' is a file but not a CIFAR .bin file (give a directory for image folders)");
    return std::make_shared<data::CifarBinaryDataset>(path, data::CifarSplit::train, data::Cifar100Labels::coarse);
  }
  fs::path dir(path);
  if (fs::exists(dir / "train_master.tsv")) {
    fs::path images = fs::exists(dir / "train") ? dir / "train" : dir;
    return std::make_shared<data::CompetitionDataset>(images.string(), (dir / "train_master.tsv").string(), io);
  }
  if (fs::exists(dir / "data_batch_1.bin") || fs::exists(dir / "train.bin"))
    return std::make_shared<data::CifarBinaryDataset>(path, data::CifarSplit::train, data::Cifar100Labels::coarse);
  bool has_subdir = false;
  for (auto& e : fs::directory_iterator(dir)) has_subdir = has_subdir || e.is_directory();
  EMBER_CHECK(has_subdir, "--data: '", path,
              "' is neither a CIFAR binary directory, a competition layout (train_master.tsv) nor an image folder "
              "(one sub-folder per class)");
  return std::make_shared<data::ImageFolderDataset>(path, io);
}

DataSetup open_data(const std::string& path, double val_fraction, uint64_t seed, bool skip_bad,
                    int64_t generated_size, bool cifar100_fine) {
  EMBER_CHECK(val_fraction >= 0 && val_fraction < 1, "--val-fraction must be in [0, 1), got ", val_fraction);
  DataSetup s;
  if (cifar100_fine && !path.empty())
    s.all = std::make_shared<data::CifarBinaryDataset>(path, data::CifarSplit::train, data::Cifar100Labels::fine);
  else
    s.all = open_dataset(path, skip_bad, generated_size, seed);
  s.num_classes = s.all->num_classes();
  s.class_names = s.all->class_names();
  if (path.empty())
    s.description = "generated " + std::to_string(s.num_classes) + "-class 32x32 (" + std::to_string(s.all->size()) +
                    " images)";
  else
    s.description = path;
  if (val_fraction > 0) {
    auto sp = data::split(s.all, val_fraction, seed, /*stratified=*/true);
    s.train = sp.train;
    s.val = sp.val;
  } else {
    s.train = s.all;
  }
  return s;
}

// The height of the data's images (the first readable one: under --skip-bad the first samples
// may be bad files, whose image is undefined); `fallback` when none is readable.
int64_t native_resolution(const data::DatasetPtr& ds, int64_t fallback) {
  for (int64_t i = 0; i < ds->size(); ++i)
    if (data::Sample s = ds->get(i); s.ok()) return s.image.size(1);
  return fallback;
}

data::LoaderOptions train_loader_options(const data::DatasetPtr& ds, const ModelSpec& spec, const RecipeConfig& c) {
  const int64_t resolution = spec.resolution;
  data::LoaderOptions o;
  o.batch_size = c.batch_size;
  o.shuffle = true;
  o.drop_last = true;
  o.num_workers = static_cast<int>(c.workers);
  o.seed = c.seed;
  o.cache_decoded = true;
  int64_t native = native_resolution(ds, resolution);
  std::vector<data::Transform> t;
  if (c.augment) {
    t.push_back(data::RandomCrop{native, native / 8});
    t.push_back(data::RandomHorizontalFlip{});
  }
  if (resolution != native) t.push_back(data::Resize{resolution, resolution});
  t.push_back(spec.normalize);
  o.transform = data::Compose{t};
  if (c.mixup > 0 || c.cutmix > 0) {
    int64_t C = ds->num_classes();
    data::MixupOrCutmix mix{{C, c.mixup > 0 ? c.mixup : 0.2, c.label_smoothing},
                            {C, c.cutmix > 0 ? c.cutmix : 1.0, c.label_smoothing},
                            c.mixup > 0 && c.cutmix > 0 ? 0.5 : (c.cutmix > 0 ? 1.0 : 0.0)};
    o.batch_transform = [mix](const Tensor& x, const Tensor& y, data::Rng& rng) { return mix(x, y, rng); };
  }
  // On a GPU the loader uploads each batch itself, from page-locked memory on the copy stream,
  // one batch ahead of the step (data/loader.h); on the CPU batches stay where they are made.
  o.device = c.device;
  o.pin_memory = c.device.is_cuda();
  return o;
}

data::LoaderOptions eval_loader_options(const data::DatasetPtr& ds, const ModelSpec& spec, int64_t batch_size,
                                        int64_t workers) {
  data::LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  o.num_workers = static_cast<int>(workers);
  int64_t native = native_resolution(ds, spec.resolution);
  std::vector<data::Transform> t;
  if (spec.resolution != native) t.push_back(data::Resize{spec.resolution, spec.resolution});
  t.push_back(spec.normalize);
  o.transform = data::Compose{t};
  return o;
}

// `t` reversed along `dim`. Negative strides are not views here, so it is copied slice by slice.
static Tensor reversed(const Tensor& t, int64_t dim) {
  const int64_t n = t.size(dim);
  Tensor out = empty_like(t);
  for (int64_t i = 0; i < n; ++i) out.narrow(dim, n - 1 - i, 1).copy_(t.narrow(dim, i, 1));
  return out;
}

Tensor flip_width(const Tensor& images) { return reversed(images, 3); }

// out[i] = t[r(i + d)] along `dim`: the part still inside, and the reflection of the last (or
// first) d slices before the edge (the edge slice itself is not repeated).
static Tensor shifted(const Tensor& t, int64_t dim, int64_t d) {
  const int64_t n = t.size(dim);
  EMBER_CHECK(d > -n && d < n, "shift_reflect: a shift of ", d, " along a side of ", n,
              " (it must be less than the side)");
  if (d == 0) return t;
  if (d > 0) return cat({t.narrow(dim, d, n - d), reversed(t.narrow(dim, n - 1 - d, d), dim)}, dim);
  return cat({reversed(t.narrow(dim, 1, -d), dim), t.narrow(dim, 0, n + d)}, dim);
}

Tensor shift_reflect(const Tensor& images, int64_t dy, int64_t dx) {
  EMBER_CHECK(images.dim() == 4, "shift_reflect: expected (N, C, H, W) images, got ", images.dim(), " dimensions");
  return shifted(shifted(images, 2, dy), 3, dx).contiguous();
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? "|" : "") + names[i];
  return s;
}

std::vector<std::string> split_names(const std::string& joined) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : joined) {
    if (ch == '|') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!joined.empty()) out.push_back(cur);
  return out;
}

std::vector<std::vector<int64_t>> confusion_matrix(const EvalOutput& ev, int64_t C) {
  EMBER_CHECK(ev.probs.dim() == 2 && ev.probs.size(1) == C, "confusion_matrix: probabilities ", ev.probs.shape_str(),
              " for ", C, " classes");
  std::vector<std::vector<int64_t>> m(C, std::vector<int64_t>(C, 0));
  const float* p = ev.probs.data<float>();
  for (size_t i = 0; i < ev.labels.size(); ++i) {
    int64_t y = ev.labels[i];
    if (y < 0 || y >= C) continue;
    const float* row = p + i * C;
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;
    m[y][best]++;
  }
  return m;
}

Predictions to_predictions(const EvalOutput& ev, int64_t C) {
  EMBER_CHECK(ev.probs.dim() == 2 && ev.probs.size(1) == C, "to_predictions: probabilities ", ev.probs.shape_str(),
              " for ", C, " classes");
  Predictions p;
  p.names = ev.names;
  p.labels = ev.labels;
  p.num_classes = C;
  const float* v = ev.probs.data<float>();
  p.probs.assign(v, v + ev.probs.numel());
  return p;
}

}  // namespace ember::apps
