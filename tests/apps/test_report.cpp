// The SVG pictures a training run writes (apps/common/report.h): the epoch axis of curves.svg is
// labelled, and every label of confusion.svg lies inside the picture, long class names too,
// without running into the "true" axis title. Text widths are estimated here on their own terms
// (0.6 em a character, a typical sans-serif average), not taken from the writer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <regex>
#include <sstream>

#include "apps/common/report.h"

namespace fs = std::filesystem;
using ember::apps::EpochRecord;
using ember::apps::write_confusion_svg;
using ember::apps::write_curves_svg;

namespace {

struct SvgText {
  double x = 0, y = 0, degrees = 0;  // the anchor point, and the rotation about it
  double font_size = 0;
  std::string anchor = "start", content;
};

struct Svg {
  double width = 0, height = 0, font_size = 0;
  std::string view_box;
  std::vector<SvgText> texts;
};

std::string attribute(const std::string& attrs, const std::string& name) {
  std::smatch m;
  return std::regex_search(attrs, m, std::regex("\\b" + name + "='([^']*)'")) ? m[1].str() : "";
}

Svg read_svg(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  Svg svg;
  std::smatch m;
  EXPECT_TRUE(std::regex_search(text, m, std::regex("<svg([^>]*)>"))) << text;
  svg.width = std::stod(attribute(m[1], "width"));
  svg.height = std::stod(attribute(m[1], "height"));
  svg.font_size = std::stod(attribute(m[1], "font-size"));
  svg.view_box = attribute(m[1], "viewBox");
  static const std::regex text_re("<text([^>]*)>([^<]*)</text>");
  static const std::regex transform_re("translate\\(([-0-9.e]+),([-0-9.e]+)\\) rotate\\(([-0-9.e]+)\\)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), text_re); it != std::sregex_iterator(); ++it) {
    const std::string attrs = (*it)[1];
    SvgText t;
    t.content = (*it)[2];
    if (std::string a = attribute(attrs, "text-anchor"); !a.empty()) t.anchor = a;
    const std::string size = attribute(attrs, "font-size");
    t.font_size = size.empty() ? svg.font_size : std::stod(size);
    std::smatch tm;
    const std::string transform = attribute(attrs, "transform");
    if (std::regex_search(transform, tm, transform_re)) {
      t.x = std::stod(tm[1]), t.y = std::stod(tm[2]), t.degrees = std::stod(tm[3]);
    } else {
      t.x = std::stod(attribute(attrs, "x")), t.y = std::stod(attribute(attrs, "y"));
    }
    svg.texts.push_back(t);
  }
  return svg;
}

double width_of(const SvgText& t) { return 0.6 * t.font_size * static_cast<double>(t.content.size()); }

// The two ends of a text's baseline, after its anchor and rotation.
std::pair<std::array<double, 2>, std::array<double, 2>> baseline(const SvgText& t) {
  const double w = width_of(t);
  const double shift = t.anchor == "end" ? -w : t.anchor == "middle" ? -w / 2 : 0.0;
  const double c = std::cos(t.degrees * std::numbers::pi / 180), s = std::sin(t.degrees * std::numbers::pi / 180);
  std::array<double, 2> from{t.x + shift * c, t.y + shift * s};
  return {from, {from[0] + w * c, from[1] + w * s}};
}

void expect_inside(const Svg& svg) {
  EXPECT_EQ(svg.view_box, "0 0 " + std::to_string(static_cast<int>(svg.width)) + " " +
                              std::to_string(static_cast<int>(svg.height)));
  for (const SvgText& t : svg.texts) {
    auto [from, to] = baseline(t);
    for (const auto& p : {from, to}) {
      EXPECT_GE(p[0], 0) << "'" << t.content << "' starts left of the picture";
      EXPECT_LE(p[0], svg.width) << "'" << t.content << "' ends right of the picture (width " << svg.width << ")";
      EXPECT_GE(p[1], 0) << "'" << t.content << "' lies above the picture";
      EXPECT_LE(p[1], svg.height) << "'" << t.content << "' lies below the picture (height " << svg.height << ")";
    }
  }
}

bool is_integer(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

class ReportSvg : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ember_report_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ReportSvg, CurvesLabelTheEpochAxis) {
  std::vector<EpochRecord> records;
  for (int64_t e = 1; e <= 12; ++e)
    records.push_back({e, "hold", 1e-3, 2.0 / e, 0.5 + 0.03 * e, 2.2 / e, 0.45 + 0.03 * e, 100.0, 1.0});
  write_curves_svg((dir_ / "curves.svg").string(), records, "effnet_b0 on a generated set");
  const Svg svg = read_svg(dir_ / "curves.svg");
  expect_inside(svg);

  // Value labels stand right-aligned left of each panel; epoch labels centred under it, above
  // the word "epoch", in increasing order, apart from each other.
  double lowest_value_label = 0, epoch_title = 1e300;
  for (const SvgText& t : svg.texts) {
    if (t.anchor == "end") lowest_value_label = std::max(lowest_value_label, t.y);
    if (t.content == "epoch") epoch_title = std::min(epoch_title, t.y);
  }
  std::vector<SvgText> ticks;
  for (const SvgText& t : svg.texts)
    if (t.anchor == "middle" && is_integer(t.content)) ticks.push_back(t);
  ASSERT_GE(ticks.size(), 2u * 3) << "expected at least three epoch labels under each of the two panels";
  EXPECT_EQ(std::count_if(ticks.begin(), ticks.end(), [](const SvgText& t) { return t.content == "12"; }), 2)
      << "the last epoch is labelled under both panels";
  for (size_t i = 0; i < ticks.size(); ++i) {
    EXPECT_GT(ticks[i].y, lowest_value_label) << "epoch label " << ticks[i].content;
    EXPECT_LT(ticks[i].y, epoch_title) << "epoch label " << ticks[i].content;
    if (i > 0 && std::stoi(ticks[i].content) > std::stoi(ticks[i - 1].content)) {
      const double room = (width_of(ticks[i]) + width_of(ticks[i - 1])) / 2;
      EXPECT_GT(ticks[i].x - ticks[i - 1].x, room) << "epoch labels " << ticks[i - 1].content << " and "
                                                   << ticks[i].content << " overlap";
    }
  }
}

TEST_F(ReportSvg, ConfusionFitsLongClassNames) {
  for (int n : {3, 12}) {  // the large cells and the small ones
    std::vector<std::string> names;
    std::vector<std::vector<int64_t>> counts(n, std::vector<int64_t>(n, 0));
    for (int k = 0; k < n; ++k) {
      names.push_back(k == 1 ? "a_rather_long_class_name_" + std::to_string(k) : "c" + std::to_string(k));
      counts[k][k] = 5 + k, counts[k][(k + 1) % n] = 2;
    }
    const fs::path path = dir_ / ("confusion_" + std::to_string(n) + ".svg");
    write_confusion_svg(path.string(), counts, names, "vit — validation confusion (best epoch 3)");
    SCOPED_TRACE(std::to_string(n) + " classes");
    const Svg svg = read_svg(path);
    expect_inside(svg);

    // Each name twice (a row and a column), and the row names clear of the rotated "true".
    auto true_label =
        std::find_if(svg.texts.begin(), svg.texts.end(), [](const SvgText& t) { return t.content == "true"; });
    ASSERT_NE(true_label, svg.texts.end());
    for (const std::string& name : names) {
      int seen = 0;
      for (const SvgText& t : svg.texts) {
        if (t.content != name) continue;
        ++seen;
        if (t.anchor == "end")
          EXPECT_GT(baseline(t).first[0], true_label->x + 0.3 * true_label->font_size)
              << "row name '" << name << "' runs into the 'true' label";
      }
      EXPECT_EQ(seen, 2) << name;
    }
  }
}

}  // namespace
