#include "apps/common/report.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/common/predictions.h"
#include "tensor/error.h"

namespace ember::apps {

namespace {
std::string num(double v) {
  if (std::isnan(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}
std::string csv_num(double v) { return std::isnan(v) ? "" : num(v); }
std::string svg_open(int width, int height, int font_size) {
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height << "' viewBox='0 0 "
    << width << " " << height << "' font-family='sans-serif' font-size='" << font_size
    << "'>\n<rect width='100%' height='100%' fill='white'/>\n";
  return s.str();
}
// The epoch axis's tick step: 1, 2, 5, 10, 20, 50, ... whichever first gives at most 10 steps.
int64_t epoch_tick_step(int64_t max_epoch) {
  for (int64_t scale = 1;; scale *= 10)
    for (int64_t m : {1, 2, 5})
      if (max_epoch <= 10 * m * scale) return m * scale;
}
// A generous guess at the width of `text` in pixels (no font metrics here): 0.65 em for an
// ASCII character, a full em for anything wider (accents, CJK).
double text_width(const std::string& text, int font_size) {
  double em = 0;
  for (unsigned char c : text) {
    if (c < 0x80) em += 0.65;
    else if ((c & 0xC0) == 0xC0) em += 1.0;  // the first byte of a multi-byte character
  }
  return em * font_size;
}
std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}
}  // namespace

namespace {
// The epoch a metrics row records: the first CSV field, or the jsonl's "epoch" value; -1 if none.
int64_t row_epoch(const std::string& line, bool jsonl) {
  size_t at = 0;
  if (jsonl) {
    const std::string key = "\"epoch\": ";
    at = line.find(key);
    if (at == std::string::npos) return -1;
    at += key.size();
  }
  int64_t epoch = -1;
  auto [ptr, ec] = std::from_chars(line.data() + at, line.data() + line.size(), epoch);
  return ec == std::errc() ? epoch : -1;
}

// Keeps the header (CSV) and the rows of epochs 1..keep_epochs, in place (atomically).
void truncate_rows(const std::string& path, int64_t keep_epochs, bool jsonl) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string line, kept;
  bool first = true;
  while (std::getline(in, line)) {
    const int64_t epoch = row_epoch(line, jsonl);
    if ((first && !jsonl) || (epoch >= 1 && epoch <= keep_epochs)) kept += line + "\n";
    first = false;
  }
  in.close();
  write_file_atomic(path, kept);
}
}  // namespace

MetricsWriter::MetricsWriter(const std::string& dir, bool append, int64_t keep_epochs)
    : jsonl_(dir + "/metrics.jsonl"), csv_(dir + "/metrics.csv") {
  if (append && keep_epochs >= 0) {
    truncate_rows(jsonl_, keep_epochs, /*jsonl=*/true);
    truncate_rows(csv_, keep_epochs, /*jsonl=*/false);
  }
  bool have_csv = append && std::ifstream(csv_).peek() != EOF;  // a missing file peeks EOF too
  if (!append) {
    std::ofstream(jsonl_, std::ios::trunc);
  }
  if (!have_csv) {
    std::ofstream c(csv_, std::ios::trunc);
    EMBER_CHECK(c.good(), "metrics: cannot write ", csv_);
    c << "epoch,phase,lr,train_loss,train_acc,val_loss,val_acc,img_per_s,seconds\n";
  }
}

void MetricsWriter::write(const EpochRecord& r) {
  std::ofstream j(jsonl_, std::ios::app);
  EMBER_CHECK(j.good(), "metrics: cannot append to ", jsonl_);
  j << "{\"epoch\": " << r.epoch << ", \"phase\": \"" << r.phase << "\", \"lr\": " << num(r.lr)
    << ", \"train_loss\": " << num(r.train_loss) << ", \"train_acc\": " << num(r.train_acc)
    << ", \"val_loss\": " << num(r.val_loss) << ", \"val_acc\": " << num(r.val_acc)
    << ", \"img_per_s\": " << num(r.img_per_s) << ", \"seconds\": " << num(r.seconds) << "}\n";
  std::ofstream c(csv_, std::ios::app);
  c << r.epoch << "," << r.phase << "," << csv_num(r.lr) << "," << csv_num(r.train_loss) << ","
    << csv_num(r.train_acc) << "," << csv_num(r.val_loss) << "," << csv_num(r.val_acc) << ","
    << csv_num(r.img_per_s) << "," << csv_num(r.seconds) << "\n";
}

void write_curves_svg(const std::string& path, const std::vector<EpochRecord>& rs, const std::string& title) {
  const int W = 900, H = 380, pad = 50, gap = 60;
  const int pw = (W - 2 * pad - gap) / 2, ph = H - 2 * pad;
  std::ostringstream s;
  s << svg_open(W, H, 12);
  s << "<text x='" << W / 2 << "' y='20' text-anchor='middle' font-size='15'>" << xml_escape(title) << "</text>\n";
  auto panel = [&](int x0, const char* name, auto get_train, auto get_val, bool unit_range) {
    double lo = unit_range ? 0.0 : 1e300, hi = unit_range ? 1.0 : -1e300;
    if (!unit_range) {
      for (auto& r : rs)
        for (double v : {get_train(r), get_val(r)})
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      if (lo > hi) lo = 0, hi = 1;
      if (hi - lo < 1e-9) hi = lo + 1;
      lo = std::max(0.0, lo - 0.05 * (hi - lo));
    }
    int64_t emax = rs.empty() ? 1 : std::max<int64_t>(1, rs.back().epoch);
    auto X = [&](double e) { return x0 + pw * (e / emax); };
    auto Y = [&](double v) { return pad + ph * (1 - (v - lo) / (hi - lo)); };
    s << "<rect x='" << x0 << "' y='" << pad << "' width='" << pw << "' height='" << ph
      << "' fill='none' stroke='#888'/>\n";
    s << "<text x='" << x0 + pw / 2 << "' y='" << pad - 8 << "' text-anchor='middle'>" << name << "</text>\n";
    for (int k = 0; k <= 4; ++k) {
      double v = lo + (hi - lo) * k / 4;
      s << "<text x='" << x0 - 5 << "' y='" << Y(v) + 4 << "' text-anchor='end'>" << std::setprecision(3) << v
        << "</text>\n";
    }
    const int64_t step = epoch_tick_step(emax);
    for (int64_t e = 0; e <= emax; e += step) {
      s << "<line x1='" << X(e) << "' y1='" << pad + ph << "' x2='" << X(e) << "' y2='" << pad + ph + 4
        << "' stroke='#888'/><text x='" << X(e) << "' y='" << pad + ph + 17 << "' text-anchor='middle'>" << e
        << "</text>\n";
    }
    s << "<text x='" << x0 + pw / 2 << "' y='" << H - 12 << "' text-anchor='middle'>epoch</text>\n";
    auto line = [&](auto get, const char* color) {
      std::ostringstream pts;
      for (auto& r : rs)
        if (std::isfinite(get(r))) pts << X(static_cast<double>(r.epoch)) << "," << Y(get(r)) << " ";
      s << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='" << pts.str() << "'/>\n";
    };
    line(get_train, "#1f77b4");
    line(get_val, "#d62728");
    s << "<text x='" << x0 + 10 << "' y='" << pad + 15 << "' fill='#1f77b4'>train</text><text x='" << x0 + 60
      << "' y='" << pad + 15 << "' fill='#d62728'>validation</text>\n";
  };
  panel(pad, "loss", [](const EpochRecord& r) { return r.train_loss; }, [](const EpochRecord& r) { return r.val_loss; },
        false);
  panel(pad + pw + gap, "accuracy", [](const EpochRecord& r) { return r.train_acc; },
        [](const EpochRecord& r) { return r.val_acc; }, true);
  s << "</svg>\n";
  std::ofstream f(path);
  EMBER_CHECK(f.good(), "write_curves_svg: cannot write ", path);
  f << s.str();
}

void write_confusion_svg(const std::string& path, const std::vector<std::vector<int64_t>>& counts,
                         const std::vector<std::string>& names, const std::string& title) {
  const int n = static_cast<int>(counts.size());
  auto name_of = [&](int k) { return k < static_cast<int>(names.size()) ? names[k] : std::to_string(k); };
  // The margins fit the longest name: row names right-aligned left of the grid (after the
  // rotated "true"), column names slanted 60° down from below the grid.
  const int font = 11, cell = n <= 10 ? 40 : 24, top = 60;
  double name_w = 0;
  for (int k = 0; k < n; ++k) name_w = std::max(name_w, text_width(name_of(k), font));
  const int true_x = 16, left = true_x + 12 + static_cast<int>(std::ceil(name_w));
  const double cos60 = 0.5, sin60 = std::sqrt(3.0) / 2;
  const int grid_bottom = top + n * cell;
  const int W = static_cast<int>(
      std::ceil(std::max(left + n * cell + name_w * cos60 + 20, text_width(title, 14) + 20)));
  const int H = static_cast<int>(std::ceil(grid_bottom + 5 + name_w * sin60 + font + 10));
  std::ostringstream s;
  s << svg_open(W, H, font);
  s << "<text x='" << W / 2 << "' y='20' text-anchor='middle' font-size='14'>" << xml_escape(title) << "</text>\n";
  s << "<text x='" << left + n * cell / 2 << "' y='" << top - 25 << "' text-anchor='middle'>predicted</text>\n";
  for (int t = 0; t < n; ++t) {
    int64_t row = 0;
    for (int64_t c : counts[t]) row += c;
    const std::string name = xml_escape(name_of(t));
    s << "<text x='" << left - 5 << "' y='" << top + t * cell + cell / 2 + 4 << "' text-anchor='end'>" << name
      << "</text>\n";
    s << "<text transform='translate(" << left + t * cell + cell / 2 + 4 << "," << grid_bottom + 5
      << ") rotate(60)'>" << name << "</text>\n";
    for (int p = 0; p < n; ++p) {
      double frac = row ? static_cast<double>(counts[t][p]) / row : 0.0;
      int shade = static_cast<int>(255 - 200 * frac);
      s << "<rect x='" << left + p * cell << "' y='" << top + t * cell << "' width='" << cell << "' height='" << cell
        << "' fill='rgb(" << shade << "," << shade << ",255)' stroke='#ddd'/>\n";
      if (counts[t][p])
        s << "<text x='" << left + p * cell + cell / 2 << "' y='" << top + t * cell + cell / 2 + 4
          << "' text-anchor='middle' font-size='" << (cell >= 40 ? 11 : 8) << "'>" << counts[t][p] << "</text>\n";
    }
  }
  s << "<text transform='translate(" << true_x << "," << top + n * cell / 2
    << ") rotate(-90)' text-anchor='middle'>true</text>\n";
  s << "</svg>\n";
  std::ofstream f(path);
  EMBER_CHECK(f.good(), "write_confusion_svg: cannot write ", path);
  f << s.str();
}

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()), last_draw_(start_),
      tty_(isatty(2)) {}

void ProgressBar::update(int64_t done, double loss, double acc, int64_t images) {
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (done < total_ && since < (tty_ ? 0.2 : 15.0)) return;
  last_draw_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  double rate = el > 0 ? images / el : 0;
  double eta = done > 0 ? el * (total_ - done) / done : 0;
  const int width = 24;
  int filled = total_ > 0 ? static_cast<int>(width * std::min(done, total_) / total_) : width;
  char line[256];
  std::snprintf(line, sizeof line, "%s [%s%s] %lld/%lld loss %.4f acc %.3f %.0f img/s ETA %d:%02d", label_.c_str(),
                std::string(filled, '=').c_str(), std::string(width - filled, ' ').c_str(),
                static_cast<long long>(done), static_cast<long long>(total_), loss, acc, rate,
                static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  std::cerr << (tty_ ? "\r" : "") << line << (tty_ ? "" : "\n") << std::flush;
}

void ProgressBar::finish() {
  if (tty_) std::cerr << "\n";
}

}  // namespace ember::apps
