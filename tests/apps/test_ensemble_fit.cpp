// fit_ensemble_weights and align_rows (apps/common/ensemble_fit.h), checked against a brute-force
// grid search and the optimality conditions computed here in float64; then ember-ensemble
// --fit-on / --fit end to end on small CSVs.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "apps/common/ensemble_fit.h"
#include "apps/common/predictions.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using ember::apps::align_rows;
using ember::apps::average;
using ember::apps::EnsembleFit;
using ember::apps::fit_ensemble_weights;
using ember::apps::Predictions;
using ember::testing::error_of;

namespace {

constexpr int64_t kClasses = 5;

std::vector<int64_t> random_labels(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> y(n);
  for (auto& v : y) v = static_cast<int64_t>(rng() % kClasses);
  return y;
}

// A member whose rows are softmax(noise · N(0,1) + skill_i · onehot(label_i)): skill(i) says how
// sure it is of the right class on row i (0: guessing; negative: confidently wrong).
template <class Skill>
Predictions member(const std::vector<int64_t>& labels, uint64_t seed, double noise, Skill skill) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Predictions p;
  p.num_classes = kClasses;
  for (size_t i = 0; i < labels.size(); ++i) {
    p.names.push_back("img_" + std::to_string(i) + ".png");
    p.labels.push_back(labels[i]);
    double z[kClasses], sum = 0;
    for (int64_t c = 0; c < kClasses; ++c) z[c] = noise * normal(rng) + (c == labels[i] ? skill(i) : 0.0);
    double mx = *std::max_element(z, z + kClasses);
    for (double& v : z) sum += (v = std::exp(v - mx));
    for (double v : z) p.probs.push_back(v / sum);
  }
  return p;
}

// The objective, written out independently: −mean ln Σ_k w_k p_k(y_i).
double mixture_loss(const std::vector<Predictions>& m, const std::vector<double>& w) {
  double total = 0;
  for (int64_t i = 0; i < m[0].rows(); ++i) {
    double q = 0;
    for (size_t k = 0; k < m.size(); ++k) q += w[k] * std::clamp(m[k].row(i)[m[k].labels[i]], 1e-15, 1.0);
    total -= std::log(q);
  }
  return total / static_cast<double>(m[0].rows());
}

// Minimises mixture_loss over the simplex by nested grids, each 10× finer around the last best.
std::vector<double> grid_search(const std::vector<Predictions>& m) {
  const int k = static_cast<int>(m.size());
  std::vector<double> best(k, 1.0 / k);
  double best_loss = mixture_loss(m, best);
  for (double step = 1e-2; step >= 1e-6; step /= 10) {
    std::vector<double> center = best;
    const int half = step == 1e-2 ? 100 : 20;  // the first level covers the whole simplex
    std::vector<double> w(k);
    auto visit = [&](auto&& self, int dim, double used) -> void {
      if (dim == k - 1) {
        w[dim] = 1.0 - used;
        if (w[dim] < -1e-12) return;
        w[dim] = std::max(w[dim], 0.0);
        double l = mixture_loss(m, w);
        if (l < best_loss) best_loss = l, best = w;
        return;
      }
      for (int s = -half; s <= half; ++s) {
        w[dim] = center[dim] + s * step;
        if (w[dim] < -1e-12 || used + w[dim] > 1 + 1e-12) continue;
        w[dim] = std::max(w[dim], 0.0);
        self(self, dim + 1, used + w[dim]);
      }
    };
    visit(visit, 0, 0.0);
  }
  return best;
}

// ∂L/∂w_k for the optimality check: on the optimum every component is >= −1, and == −1 where w_k > 0.
std::vector<double> gradient(const std::vector<Predictions>& m, const std::vector<double>& w) {
  std::vector<double> g(m.size(), 0.0);
  for (int64_t i = 0; i < m[0].rows(); ++i) {
    double q = 0;
    for (size_t k = 0; k < m.size(); ++k) q += w[k] * std::clamp(m[k].row(i)[m[k].labels[i]], 1e-15, 1.0);
    for (size_t k = 0; k < m.size(); ++k) g[k] -= std::clamp(m[k].row(i)[m[k].labels[i]], 1e-15, 1.0) / q;
  }
  for (double& v : g) v /= static_cast<double>(m[0].rows());
  return g;
}

void expect_on_simplex(const std::vector<double>& w) {
  for (double v : w) EXPECT_GE(v, 0.0);
  EXPECT_NEAR(std::accumulate(w.begin(), w.end(), 0.0), 1.0, 1e-12);
}

// Two members, each sure on its own half of the rows and guessing on the other: the best mix is inside.
std::vector<Predictions> complementary_pair(int64_t n) {
  auto y = random_labels(n, 1);
  return {member(y, 2, 1.0, [&](size_t i) { return i % 3 == 0 ? 0.2 : 2.5; }),
          member(y, 3, 1.0, [&](size_t i) { return i % 3 == 0 ? 3.0 : 0.5; })};
}

}  // namespace

TEST(FitEnsembleWeights, APerfectMemberTakesAllTheWeight) {
  auto y = random_labels(300, 7);
  std::vector<Predictions> m = {member(y, 8, 1.0, [](size_t) { return 0.0; }),    // guessing
                                member(y, 9, 0.3, [](size_t) { return 6.0; })};   // right, and sure
  EnsembleFit fit = fit_ensemble_weights(m);
  EXPECT_TRUE(fit.converged) << "gap " << fit.gap;
  expect_on_simplex(fit.weights);
  EXPECT_NEAR(fit.weights[1], 1.0, 1e-9);
  EXPECT_NEAR(fit.log_loss, ember::apps::log_loss(m[1]), 1e-9);
}

TEST(FitEnsembleWeights, AnInteriorOptimumMatchesAGridSearch) {
  std::vector<Predictions> two = complementary_pair(240);
  EnsembleFit fit = fit_ensemble_weights(two);
  EXPECT_TRUE(fit.converged) << "gap " << fit.gap;
  std::vector<double> grid = grid_search(two);
  EXPECT_GT(grid[0], 0.05);
  EXPECT_LT(grid[0], 0.95);
  for (int k = 0; k < 2; ++k) EXPECT_NEAR(fit.weights[k], grid[k], 1e-4);
  EXPECT_LE(mixture_loss(two, fit.weights), mixture_loss(two, grid) + 1e-12);
  EXPECT_NEAR(fit.log_loss, mixture_loss(two, fit.weights), 1e-12);

  // Three members, each sure on its own third of the rows, unequally.
  const auto& y = two[0].labels;
  std::vector<Predictions> three = {member(y, 4, 1.0, [](size_t i) { return i % 3 == 0 ? 2.0 : 0.3; }),
                                    member(y, 5, 1.0, [](size_t i) { return i % 3 == 1 ? 3.0 : 0.6; }),
                                    member(y, 6, 1.0, [](size_t i) { return i % 3 == 2 ? 4.0 : 0.1; })};
  fit = fit_ensemble_weights(three);
  EXPECT_TRUE(fit.converged) << "gap " << fit.gap;
  expect_on_simplex(fit.weights);
  grid = grid_search(three);
  for (int k = 0; k < 3; ++k) {
    EXPECT_GT(grid[k], 0.02) << k;
    EXPECT_NEAR(fit.weights[k], grid[k], 1e-4) << k;
  }
  EXPECT_LE(mixture_loss(three, fit.weights), mixture_loss(three, grid) + 1e-12);
}

TEST(FitEnsembleWeights, ABoundaryOptimumMeetsTheOptimalityConditions) {
  // Four members, one dominated (confidently wrong on many rows) and one an exact copy of another.
  auto m = complementary_pair(200);
  m.push_back(member(m[0].labels, 5, 1.0, [](size_t i) { return i % 2 ? -3.0 : 1.0; }));
  m.push_back(m[1]);
  EnsembleFit fit = fit_ensemble_weights(m);
  EXPECT_TRUE(fit.converged) << "gap " << fit.gap;
  expect_on_simplex(fit.weights);
  EXPECT_LT(fit.weights[2], 1e-9);
  EXPECT_NEAR(fit.weights[1] + fit.weights[3], grid_search(complementary_pair(200))[1], 1e-4);
  std::vector<double> g = gradient(m, fit.weights);
  for (size_t k = 0; k < m.size(); ++k) {
    EXPECT_GE(g[k], -1 - 1e-9) << k;
    if (fit.weights[k] > 1e-6) {
      EXPECT_NEAR(g[k], -1, 1e-9) << k;
    }
  }
}

TEST(FitEnsembleWeights, FittedBeatsEqualWeightsBeatsTheMembersOnAverage) {
  auto m = complementary_pair(300);
  m.push_back(member(m[0].labels, 6, 1.5, [](size_t) { return 1.0; }));
  EnsembleFit fit = fit_ensemble_weights(m);
  double fitted = ember::apps::log_loss(average(m, fit.weights));
  double equal = ember::apps::log_loss(average(m, {}));
  double mean_member = 0, best_member = 1e300;
  for (auto& p : m) {
    mean_member += ember::apps::log_loss(p) / static_cast<double>(m.size());
    best_member = std::min(best_member, ember::apps::log_loss(p));
  }
  EXPECT_NEAR(fitted, fit.log_loss, 1e-12);
  EXPECT_LE(fitted, equal);
  EXPECT_LE(equal, mean_member);  // Jensen: −ln of a mean <= the mean of −ln
  EXPECT_LE(fitted, best_member);
  EXPECT_LT(fitted, equal - 1e-3);  // and here the fit gains something real
}

TEST(FitEnsembleWeights, RowsAreMatchedByFileNameAndMismatchesAreClearErrors) {
  auto m = complementary_pair(60);
  // Member 1 in reverse order: align_rows puts it back, and the fit is the same.
  Predictions reversed = m[1];
  for (int64_t i = 0; i < reversed.rows(); ++i) {
    int64_t j = reversed.rows() - 1 - i;
    reversed.names[i] = m[1].names[j];
    reversed.labels[i] = m[1].labels[j];
    std::copy(m[1].row(j), m[1].row(j) + kClasses, reversed.probs.begin() + i * kClasses);
  }
  EXPECT_NE(error_of([&] { fit_ensemble_weights({m[0], reversed}); }).find("align_rows"), std::string::npos);
  auto aligned = align_rows({m[0], reversed}, {"a.csv", "b.csv"});
  EXPECT_EQ(aligned[1].probs, m[1].probs);
  EXPECT_EQ(fit_ensemble_weights(aligned).weights, fit_ensemble_weights(m).weights);

  Predictions renamed = m[1];
  renamed.names[5] = "stranger.png";
  std::string msg = error_of([&] { align_rows({m[0], renamed}, {"a.csv", "b.csv"}); });
  EXPECT_NE(msg.find("'stranger.png' is in 'b.csv' but not in 'a.csv'"), std::string::npos) << msg;
  Predictions relabelled = m[1];
  relabelled.labels[3] = (relabelled.labels[3] + 1) % kClasses;
  msg = error_of([&] { align_rows({m[0], relabelled}, {"a.csv", "b.csv"}); });
  EXPECT_NE(msg.find("'img_3.png' has label"), std::string::npos) << msg;
  Predictions shorter = m[1];
  shorter.names.pop_back(), shorter.labels.pop_back(), shorter.probs.resize(shorter.probs.size() - kClasses);
  msg = error_of([&] { align_rows({m[0], shorter}, {"a.csv", "b.csv"}); });
  EXPECT_NE(msg.find("'b.csv' has 59 rows, 'a.csv' has 60"), std::string::npos) << msg;
  Predictions twice = m[1];
  twice.names[1] = twice.names[0];
  msg = error_of([&] { align_rows({m[0], twice}); });
  EXPECT_NE(msg.find("member 1 lists 'img_0.png' twice"), std::string::npos) << msg;
  Predictions unlabelled = m[0];
  unlabelled.labels[2] = -1;
  msg = error_of([&] { fit_ensemble_weights({unlabelled, m[1]}); });
  EXPECT_NE(msg.find("has label -1; fitting needs every row labelled"), std::string::npos) << msg;
}

namespace {
using AppResult = ember::testing::CommandResult;
AppResult run_ensemble(const std::string& args) { return ember::testing::run_app("ember-ensemble " + args); }
std::vector<double> read_weights(const fs::path& p) {
  std::ifstream f(p);
  std::vector<double> w;
  for (double v; f >> v;) w.push_back(v);
  return w;
}
}  // namespace

TEST(EnsembleApp, FitOnValidationFilesThenApplyToTheTestFiles) {
  fs::path dir = fs::temp_directory_path() / ("ember_ensemble_fit_" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto val = complementary_pair(90);
  auto test = complementary_pair(30);
  for (auto& t : test) std::fill(t.labels.begin(), t.labels.end(), -1);  // test files without labels
  std::string v0 = (dir / "v0.csv").string(), v1 = (dir / "v1.csv").string();
  std::string t0 = (dir / "t0.csv").string(), t1 = (dir / "t1.csv").string(), out = (dir / "out").string();
  ember::apps::write_predictions(v0, val[0]);
  ember::apps::write_predictions(v1, val[1]);
  ember::apps::write_predictions(t0, test[0]);
  ember::apps::write_predictions(t1, test[1]);

  AppResult r = run_ensemble(t0 + " " + t1 + " --fit-on " + v0 + " " + v1 + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* s : {"ensemble, equal weights", "ensemble, fitted weights", "weights.txt"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  // The weights written are the fit of the CSVs as read back (7 significant digits).
  auto val_read = align_rows({ember::apps::read_predictions(v0), ember::apps::read_predictions(v1)});
  std::vector<double> expected = fit_ensemble_weights(val_read).weights;
  std::vector<double> w = read_weights(fs::path(out) / "weights.txt");
  ASSERT_EQ(w.size(), 2u);
  for (int k = 0; k < 2; ++k) EXPECT_NEAR(w[k], expected[k], 1e-9);
  auto ens = ember::apps::read_predictions(out + "/ensemble.csv");
  auto t0r = ember::apps::read_predictions(t0), t1r = ember::apps::read_predictions(t1);
  for (int64_t c = 0; c < kClasses; ++c)
    EXPECT_NEAR(ens.row(4)[c], w[0] * t0r.row(4)[c] + w[1] * t1r.row(4)[c], 1e-6);

  // --fit: on the positional files themselves, which must be labelled.
  r = run_ensemble(v0 + " " + v1 + " --fit --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_weights(fs::path(out) / "weights.txt"), w);
  // Rows are matched by file name, in the positional files too: v1 reversed gives the same.
  Predictions reversed = val[1];
  std::reverse(reversed.names.begin(), reversed.names.end());
  std::reverse(reversed.labels.begin(), reversed.labels.end());
  for (int64_t i = 0; i < reversed.rows(); ++i)
    std::copy(val[1].row(i), val[1].row(i) + kClasses, reversed.probs.begin() + (reversed.rows() - 1 - i) * kClasses);
  std::string v1r = (dir / "v1r.csv").string();
  ember::apps::write_predictions(v1r, reversed);
  r = run_ensemble(v0 + " " + v1r + " --fit --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_weights(fs::path(out) / "weights.txt"), w);
  EXPECT_EQ(ember::apps::read_predictions(out + "/ensemble.csv").names, val[0].names);
  r = run_ensemble(t0 + " " + t1 + " --fit --out " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("has no label for"), std::string::npos) << r.output;

  // Misuse.
  r = run_ensemble(v0 + " " + v1 + " --weights 1 2 --fit");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("excludes"), std::string::npos) << r.output;
  r = run_ensemble(t0 + " " + t1 + " --fit-on " + v0);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--fit-on got 1 validation files for 2"), std::string::npos) << r.output;
  Predictions other = val[1];
  other.names[0] = "elsewhere.png";
  ember::apps::write_predictions(v1, other);
  r = run_ensemble(t0 + " " + t1 + " --fit-on " + v0 + " " + v1 + " --out " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("'elsewhere.png' is in '" + v1 + "' but not in '" + v0 + "'"), std::string::npos)
      << r.output;
  fs::remove_all(dir);
}
