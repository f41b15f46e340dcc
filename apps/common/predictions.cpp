#include "apps/common/predictions.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "apps/common/parse_number.h"
#include "tensor/error.h"

namespace ember::apps {

void write_file_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EMBER_CHECK(fd >= 0, "cannot write ", tmp);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) {
      ::close(fd);
      std::remove(tmp.c_str());
      throw make_error("write to ", tmp, " failed");
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw make_error("cannot rename ", tmp, " to ", path);
  }
}

int64_t remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int64_t removed = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0 || !entry.is_regular_file(ec)) continue;
    long long pid = 0;
    if (!parse_whole(name.substr(at + 5), pid) || pid <= 0 || pid > INT32_MAX) continue;
    const bool alive = pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
    if (alive) continue;
    if (fs::remove(entry.path(), ec)) {
      std::fprintf(stderr, "removed %s, left by process %lld (killed while writing)\n", entry.path().c_str(), pid);
      ++removed;
    }
  }
  return removed;
}

static std::string format_row(const Predictions& p, int64_t i, bool with_label) {
  std::ostringstream os;
  os.precision(7);
  os << p.names[i];
  if (with_label) os << "," << p.labels[i];
  for (int64_t c = 0; c < p.num_classes; ++c) os << "," << p.row(i)[c];
  os << "\n";
  return os.str();
}

void write_predictions(const std::string& path, const Predictions& p) {
  std::string text = "file_name,label";
  for (int64_t c = 0; c < p.num_classes; ++c) text += ",p" + std::to_string(c);
  text += "\n";
  for (int64_t i = 0; i < p.rows(); ++i) text += format_row(p, i, true);
  write_file_atomic(path, text);
}

void write_submission(const std::string& path, const Predictions& p) {
  std::string text;
  for (int64_t i = 0; i < p.rows(); ++i) text += format_row(p, i, false);
  write_file_atomic(path, text);
}

static std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

Predictions read_predictions(const std::string& path) {
  std::ifstream f(path);
  EMBER_CHECK(f.good(), "predictions: cannot open '", path, "'");
  std::string line;
  EMBER_CHECK(std::getline(f, line), "predictions: '", path, "' is empty");
  auto header = split_csv(line);
  EMBER_CHECK(header.size() >= 3 && header[0] == "file_name" && header[1] == "label", "predictions: '", path,
              "' line 1: expected the header 'file_name,label,p0,...', got '", line.substr(0, 60), "'");
  Predictions p;
  p.num_classes = static_cast<int64_t>(header.size()) - 2;
  int64_t lineno = 1;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty()) continue;
    auto cols = split_csv(line);
    EMBER_CHECK(static_cast<int64_t>(cols.size()) == p.num_classes + 2, "predictions: '", path, "' line ", lineno,
                ": ", cols.size(), " columns, expected ", p.num_classes + 2);
    p.names.push_back(cols[0]);
    // Whole fields only: "0x1", "1.5" or "7abc" are not labels, "0.5abc" is not a probability.
    int64_t label = 0;
    EMBER_CHECK(parse_whole(cols[1], label) && label >= -1 && label < p.num_classes, "predictions: '", path,
                "' line ", lineno, ": label '", cols[1], "' is not -1 or a class id below ", p.num_classes);
    p.labels.push_back(label);
    double sum = 0;
    for (int64_t c = 0; c < p.num_classes; ++c) {
      double v = 0;
      EMBER_CHECK(parse_whole(cols[2 + c], v) && std::isfinite(v) && v >= 0, "predictions: '", path, "' line ",
                  lineno, ": probability '", cols[2 + c], "' (column p", c, ") is not a finite non-negative number");
      p.probs.push_back(v);
      sum += v;
    }
    EMBER_CHECK(std::fabs(sum - 1.0) < 1e-3, "predictions: '", path, "' line ", lineno, ": probabilities sum to ",
                sum, ", expected 1");
  }
  EMBER_CHECK(p.rows() > 0, "predictions: '", path, "' has no rows");
  return p;
}

double accuracy(const Predictions& p) {
  int64_t n = 0, right = 0;
  for (int64_t i = 0; i < p.rows(); ++i) {
    if (p.labels[i] < 0) continue;
    const double* r = p.row(i);
    int64_t best = 0;
    for (int64_t c = 1; c < p.num_classes; ++c)
      if (r[c] > r[best]) best = c;
    right += best == p.labels[i];
    ++n;
  }
  return n ? static_cast<double>(right) / n : std::numeric_limits<double>::quiet_NaN();
}

double log_loss(const Predictions& p) {
  int64_t n = 0;
  double total = 0;
  for (int64_t i = 0; i < p.rows(); ++i) {
    int64_t y = p.labels[i];
    if (y < 0) continue;
    EMBER_CHECK(y < p.num_classes, "log_loss: label ", y, " of '", p.names[i], "' is not below the class count ",
                p.num_classes);
    total -= std::log(std::clamp(p.row(i)[y], 1e-15, 1.0));
    ++n;
  }
  return n ? total / n : std::numeric_limits<double>::quiet_NaN();
}

Predictions average(const std::vector<Predictions>& members, const std::vector<double>& weights) {
  EMBER_CHECK(!members.empty(), "ensemble: no members");
  EMBER_CHECK(weights.empty() || weights.size() == members.size(), "ensemble: ", weights.size(), " weights for ",
              members.size(), " members");
  const Predictions& first = members[0];
  Predictions out = first;
  std::fill(out.probs.begin(), out.probs.end(), 0.0);
  double wsum = 0;
  for (size_t k = 0; k < members.size(); ++k) {
    const Predictions& m = members[k];
    EMBER_CHECK(m.num_classes == first.num_classes, "ensemble: member ", k, " has ", m.num_classes,
                " classes, member 0 has ", first.num_classes);
    EMBER_CHECK(m.rows() == first.rows(), "ensemble: member ", k, " has ", m.rows(), " rows, member 0 has ",
                first.rows());
    for (int64_t i = 0; i < m.rows(); ++i)
      EMBER_CHECK(m.names[i] == first.names[i], "ensemble: row ", i, " is '", m.names[i], "' in member ", k,
                  " but '", first.names[i], "' in member 0 (predict the same data in the same order)");
    double w = weights.empty() ? 1.0 : weights[k];
    EMBER_CHECK(w >= 0 && std::isfinite(w), "ensemble: weight ", w, " of member ", k, " must be finite and >= 0");
    wsum += w;
    for (size_t j = 0; j < m.probs.size(); ++j) out.probs[j] += w * m.probs[j];
  }
  EMBER_CHECK(wsum > 0, "ensemble: the weights sum to 0");
  for (double& v : out.probs) v /= wsum;
  return out;
}

}  // namespace ember::apps
