// Image-file datasets: the shared decode/bad-file logic, ImageFolderDataset (root/<class>/<file>)
// and CompetitionDataset (an image folder + train_master.tsv).
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "data/dataset.h"
#include "data/image_io.h"
#include "tensor/cpu/parallel.h"

namespace fs = std::filesystem;

namespace ember::data {

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

bool is_hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  for (std::string& f : fields) {  // trim spaces and a Windows line end
    while (!f.empty() && (f.back() == '\r' || f.back() == ' ')) f.pop_back();
    size_t b = f.find_first_not_of(' ');
    f = b == std::string::npos ? std::string() : f.substr(b);
  }
  return fields;
}

// Image files under `dir` (recursively), sorted by their path relative to `dir`.
std::vector<fs::path> list_images(const fs::path& dir) {
  std::vector<fs::path> files;
  auto options = fs::directory_options::follow_directory_symlink;
  for (auto it = fs::recursive_directory_iterator(dir, options); it != fs::recursive_directory_iterator(); ++it) {
    if (is_hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && is_image_file(it->path())) files.push_back(fs::relative(it->path(), dir));
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

// ---- ImageFileDataset --------------------------------------------------------------------

const std::string& ImageFileDataset::path(int64_t i) const {
  check_index(i, "ImageFileDataset::path");
  return entries_[i].path;
}

int64_t ImageFileDataset::label(int64_t i) const {
  check_index(i, "ImageFileDataset::label");
  return entries_[i].label;
}

Sample ImageFileDataset::get(int64_t i) const {
  check_index(i, "ImageFileDataset::get");
  const Entry& e = entries_[i];
  Sample s;
  s.label = e.label;
  s.name = e.name;
  if (!options_.skip_bad) {
    s.image = read_image(e.path);
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(bad_mu_);
    if (bad_paths_.count(e.path)) return s;
  }
  try {
    s.image = read_image(e.path);
  } catch (const Error& err) {
    mark_bad(e.path, err.what());
  }
  return s;
}

void ImageFileDataset::mark_bad(const std::string& path, const std::string& why) const {
  std::lock_guard<std::mutex> lock(bad_mu_);
  if (!bad_paths_.insert(path).second) return;
  bad_count_++;
  std::cerr << "ember::data: warning: leaving out bad image '" << path << "': " << why << "\n";
}

void ImageFileDataset::screen_headers() {
  if (!options_.skip_bad) return;
  std::vector<uint8_t> bad(entries_.size(), 0);
  cpu::parallel_for(static_cast<int64_t>(entries_.size()), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        std::vector<uint8_t> bytes = read_file_bytes(entries_[i].path);
        read_image_info(bytes.data(), bytes.size(), entries_[i].path);
      } catch (const std::exception& err) {
        mark_bad(entries_[i].path, err.what());
        bad[i] = 1;
      }
    }
  });
  size_t kept = 0;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (!bad[i]) {
      if (kept != i) entries_[kept] = std::move(entries_[i]);
      ++kept;
    }
  entries_.resize(kept);
}

// ---- ImageFolderDataset ------------------------------------------------------------------

ImageFolderDataset::ImageFolderDataset(const std::string& root, ImageFileOptions options)
    : ImageFileDataset(options) {
  std::error_code ec;
  EMBER_CHECK(fs::is_directory(root, ec), "ImageFolderDataset: '", root, "' is not a directory");
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && !is_hidden(entry.path())) class_dirs.push_back(entry.path());
  std::sort(class_dirs.begin(), class_dirs.end());
  EMBER_CHECK(!class_dirs.empty(), "ImageFolderDataset: '", root,
              "' has no class sub-folders (expected root/<class>/<image files>)");
  for (const fs::path& dir : class_dirs) {
    const std::string cls = dir.filename().string();
    const auto label = static_cast<int64_t>(class_names_.size());
    class_names_.push_back(cls);
    for (const fs::path& rel : list_images(dir))
      entries_.push_back({(dir / rel).string(), cls + "/" + rel.generic_string(), label});
  }
  EMBER_CHECK(!entries_.empty(), "ImageFolderDataset: no .jpg/.jpeg/.png files under '", root, "'");
  screen_headers();
}

// ---- CompetitionDataset ------------------------------------------------------------------

CompetitionDataset::CompetitionDataset(const std::string& image_dir, const std::string& tsv_path,
                                       ImageFileOptions options, int64_t min_classes)
    : ImageFileDataset(options) {
  std::error_code ec;
  EMBER_CHECK(fs::is_directory(image_dir, ec), "CompetitionDataset: image folder '", image_dir,
              "' is not a directory");
  std::ifstream in(tsv_path);
  EMBER_CHECK(in.good(), "CompetitionDataset: cannot open '", tsv_path, "'");
  std::string line;
  EMBER_CHECK(static_cast<bool>(std::getline(in, line)), "CompetitionDataset: '", tsv_path,
              "' line 1: empty file, expected a header with 'file_name' and 'label_id' columns");
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
  const std::vector<std::string> header = split_tabs(line);
  auto column = [&](const char* want) {
    auto it = std::find(header.begin(), header.end(), want);
    if (it != header.end()) return static_cast<size_t>(it - header.begin());
    std::string got;
    for (const std::string& h : header) got += (got.empty() ? "'" : ", '") + h + "'";
    throw make_error("CompetitionDataset: '", tsv_path, "' line 1: no '", want, "' column in the header (got ", got,
                     "); expected tab-separated columns including 'file_name' and 'label_id'");
  };
  const size_t file_col = column("file_name"), label_col = column("label_id");
  const size_t needed = std::max(file_col, label_col) + 1;

  int64_t max_label = -1;
  for (int64_t line_no = 2; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    const std::vector<std::string> fields = split_tabs(line);
    EMBER_CHECK(fields.size() >= needed, "CompetitionDataset: '", tsv_path, "' line ", line_no, ": expected ",
                header.size(), " tab-separated fields, got ", fields.size());
    const std::string& file = fields[file_col];
    const std::string& text = fields[label_col];
    int64_t label = -1;
    auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), label);
    EMBER_CHECK(err == std::errc() && end == text.data() + text.size() && label >= 0 && !text.empty(),
                "CompetitionDataset: '", tsv_path, "' line ", line_no, ": label_id '", text,
                "' is not a non-negative integer");
    EMBER_CHECK(label < kMaxClasses, "CompetitionDataset: '", tsv_path, "' line ", line_no, ": label_id ", label,
                " is not below the limit of ", kMaxClasses, " classes");
    EMBER_CHECK(!file.empty(), "CompetitionDataset: '", tsv_path, "' line ", line_no, ": empty file_name");
    const fs::path rel(file);
    bool escapes = rel.is_absolute() || rel.has_root_name() || rel.has_root_directory();
    for (const fs::path& part : rel) escapes = escapes || part == "..";
    EMBER_CHECK(!escapes, "CompetitionDataset: '", tsv_path, "' line ", line_no, ": file_name '", file,
                "' is absolute or contains '..' (file names must stay inside '", image_dir, "')");
    const fs::path full = fs::path(image_dir) / file;
    EMBER_CHECK(fs::is_regular_file(full, ec), "CompetitionDataset: '", tsv_path, "' line ", line_no, ": image '",
                file, "' not found in '", image_dir, "'");
    entries_.push_back({full.string(), file, label});
    max_label = std::max(max_label, label);
  }
  EMBER_CHECK(!entries_.empty(), "CompetitionDataset: '", tsv_path, "' lists no images");
  num_classes_ = std::max(max_label + 1, min_classes);
  screen_headers();
}

std::shared_ptr<CompetitionDataset> CompetitionDataset::unlabeled(const std::string& image_dir, int64_t num_classes,
                                                                  ImageFileOptions options) {
  std::error_code ec;
  EMBER_CHECK(fs::is_directory(image_dir, ec), "CompetitionDataset::unlabeled: '", image_dir, "' is not a directory");
  std::shared_ptr<CompetitionDataset> ds(new CompetitionDataset(options));
  for (const fs::path& rel : list_images(image_dir))
    ds->entries_.push_back({(fs::path(image_dir) / rel).string(), rel.generic_string(), -1});
  EMBER_CHECK(!ds->entries_.empty(), "CompetitionDataset::unlabeled: no .jpg/.jpeg/.png files in '", image_dir, "'");
  ds->num_classes_ = num_classes;
  ds->screen_headers();
  return ds;
}

std::vector<std::string> CompetitionDataset::class_names() const {
  std::vector<std::string> names;
  for (int64_t c = 0; c < num_classes_; ++c) names.push_back(std::to_string(c));
  return names;
}

}  // namespace ember::data
