#include "apps/common/ensemble_fit.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "tensor/error.h"

namespace ember::apps {

namespace {

// The true-label probabilities, (N, K) row-major, and the objective's value, gradient and Hessian.
struct MixtureObjective {
  int64_t n = 0;
  int k = 0;
  std::vector<double> p;  // (N, K)

  double value(const std::vector<double>& w) const {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total -= std::log(q(i, w));
    return total / static_cast<double>(n);
  }
  double q(int64_t i, const std::vector<double>& w) const {
    double s = 0;
    for (int j = 0; j < k; ++j) s += w[j] * p[i * k + j];
    return s;
  }
  // Returns L(w); fills g (K) and h (K, K).
  double derivatives(const std::vector<double>& w, std::vector<double>& g, std::vector<double>& h) const {
    g.assign(k, 0.0);
    h.assign(static_cast<size_t>(k) * k, 0.0);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double* pi = &p[i * k];
      double qi = q(i, w);
      total -= std::log(qi);
      for (int a = 0; a < k; ++a) {
        double ua = pi[a] / qi;
        g[a] -= ua;
        for (int b = 0; b <= a; ++b) h[a * k + b] += ua * pi[b] / qi;
      }
    }
    double inv_n = 1.0 / static_cast<double>(n);
    for (int a = 0; a < k; ++a) {
      g[a] *= inv_n;
      for (int b = 0; b <= a; ++b) h[b * k + a] = h[a * k + b] *= inv_n;
    }
    return total * inv_n;
  }
  // d/dt L(w + t·d) at t.
  double slope(const std::vector<double>& w, const std::vector<double>& d, double t) const {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
      double qi = 0, di = 0;
      for (int j = 0; j < k; ++j) {
        qi += (w[j] + t * d[j]) * p[i * k + j];
        di += d[j] * p[i * k + j];
      }
      s -= di / qi;
    }
    return s / static_cast<double>(n);
  }
};

// Solves A x = b in place (A: m×m row-major) by Gaussian elimination with partial pivoting.
// Returns false when A is numerically singular.
bool solve_dense(std::vector<double> a, std::vector<double>& b, int m) {
  for (int c = 0; c < m; ++c) {
    int piv = c;
    for (int r = c + 1; r < m; ++r)
      if (std::fabs(a[r * m + c]) > std::fabs(a[piv * m + c])) piv = r;
    if (std::fabs(a[piv * m + c]) < 1e-300) return false;
    if (piv != c) {
      for (int j = 0; j < m; ++j) std::swap(a[c * m + j], a[piv * m + j]);
      std::swap(b[c], b[piv]);
    }
    for (int r = c + 1; r < m; ++r) {
      double f = a[r * m + c] / a[c * m + c];
      if (f == 0) continue;
      for (int j = c; j < m; ++j) a[r * m + j] -= f * a[c * m + j];
      b[r] -= f * b[c];
    }
  }
  for (int c = m - 1; c >= 0; --c) {
    double s = b[c];
    for (int j = c + 1; j < m; ++j) s -= a[c * m + j] * b[j];
    b[c] = s / a[c * m + c];
  }
  return true;
}

// The Newton direction on the support S (zero elsewhere): [H_SS + μI, 1; 1ᵀ, 0][d; ν] = [−g_S; 0].
std::vector<double> newton_direction(const std::vector<double>& g, const std::vector<double>& h,
                                     const std::vector<int>& support, int k) {
  int s = static_cast<int>(support.size());
  int m = s + 1;
  double max_diag = 0;
  for (int a : support) max_diag = std::max(max_diag, h[a * k + a]);
  double ridge = 1e-12 * (1.0 + max_diag);
  std::vector<double> a(static_cast<size_t>(m) * m, 0.0), b(m, 0.0);
  for (int r = 0; r < s; ++r) {
    for (int c = 0; c < s; ++c) a[r * m + c] = h[support[r] * k + support[c]] + (r == c ? ridge : 0.0);
    a[r * m + s] = a[s * m + r] = 1.0;
    b[r] = -g[support[r]];
  }
  std::vector<double> d(k, 0.0);
  if (!solve_dense(a, b, m)) return d;
  for (int r = 0; r < s; ++r) d[support[r]] = b[r];
  return d;
}

void renormalize(std::vector<double>& w) {
  double s = 0;
  for (double& v : w) s += (v = std::max(v, 0.0));
  for (double& v : w) v /= s;
}

}  // namespace

EnsembleFit fit_ensemble_weights(const std::vector<Predictions>& members, double tolerance, int max_iterations) {
  EMBER_CHECK(members.size() >= 2, "fit_ensemble_weights: need at least two members, got ", members.size());
  const Predictions& first = members[0];
  MixtureObjective f;
  f.n = first.rows();
  f.k = static_cast<int>(members.size());
  EMBER_CHECK(f.n > 0, "fit_ensemble_weights: member 0 has no rows");
  f.p.resize(static_cast<size_t>(f.n) * f.k);
  for (int j = 0; j < f.k; ++j) {
    const Predictions& m = members[j];
    EMBER_CHECK(m.rows() == f.n && m.num_classes == first.num_classes, "fit_ensemble_weights: member ", j, " has ",
                m.rows(), " rows and ", m.num_classes, " classes, member 0 has ", f.n, " and ", first.num_classes,
                " (align_rows matches rows by file name)");
    for (int64_t i = 0; i < f.n; ++i) {
      EMBER_CHECK(m.names[i] == first.names[i], "fit_ensemble_weights: row ", i, " is '", m.names[i], "' in member ",
                  j, " but '", first.names[i], "' in member 0 (align_rows matches rows by file name)");
      int64_t y = m.labels[i];
      EMBER_CHECK(y >= 0 && y < m.num_classes, "fit_ensemble_weights: '", m.names[i], "' in member ", j,
                  " has label ", y, "; fitting needs every row labelled with a class in [0, ", m.num_classes, ")");
      EMBER_CHECK(y == first.labels[i], "fit_ensemble_weights: '", m.names[i], "' has label ", y, " in member ", j,
                  " but ", first.labels[i], " in member 0");
      f.p[i * f.k + j] = std::clamp(m.row(i)[y], 1e-15, 1.0);
    }
  }

  EnsembleFit fit;
  std::vector<double> w(f.k, 1.0 / f.k), g, h, trial(f.k);
  for (fit.iterations = 0;; ++fit.iterations) {
    double value = f.derivatives(w, g, h);
    int best = static_cast<int>(std::min_element(g.begin(), g.end()) - g.begin());
    double wg = 0;
    for (int j = 0; j < f.k; ++j) wg += w[j] * g[j];
    fit.log_loss = value;
    fit.gap = std::max(0.0, wg - g[best]);
    if (fit.gap <= tolerance) {
      fit.converged = true;
      break;
    }
    if (fit.iterations >= max_iterations) break;

    std::vector<int> support;
    for (int j = 0; j < f.k; ++j)
      if (w[j] > 0) support.push_back(j);
    bool progressed = false;
    if (w[best] > 0) {  // Newton on the support, Armijo backtracking, stopping at the simplex's face
      std::vector<double> d = newton_direction(g, h, support, f.k);
      double descent = 0, t_max = 1.0;
      int blocking = -1;
      for (int j = 0; j < f.k; ++j) {
        descent += g[j] * d[j];
        if (d[j] < 0 && w[j] / -d[j] < t_max) t_max = w[j] / -d[j], blocking = j;
      }
      if (descent < 0) {
        for (double t = t_max; t > 1e-12; t *= 0.5) {
          for (int j = 0; j < f.k; ++j) trial[j] = w[j] + t * d[j];
          if (t == t_max && blocking >= 0) trial[blocking] = 0.0;
          renormalize(trial);
          if (f.value(trial) <= value + 1e-4 * t * descent) {
            w = trial;
            progressed = true;
            break;
          }
        }
      }
    }
    if (!progressed) {  // Frank-Wolfe towards the steepest vertex: exact line search on a convex slope
      std::vector<double> d(f.k);
      for (int j = 0; j < f.k; ++j) d[j] = (j == best ? 1.0 : 0.0) - w[j];
      double lo = 0, hi = 1;
      if (f.slope(w, d, 1.0) > 0)
        for (int it = 0; it < 100 && hi - lo > 1e-17; ++it) {
          double mid = 0.5 * (lo + hi);
          (f.slope(w, d, mid) > 0 ? hi : lo) = mid;
        }
      else
        lo = 1;
      if (lo <= 0) break;  // no step helps: round-off has the last word
      for (int j = 0; j < f.k; ++j) trial[j] = w[j] + lo * d[j];
      renormalize(trial);
      if (!(f.value(trial) <= value)) break;
      w = trial;
    }
  }
  fit.weights = w;
  return fit;
}

std::vector<Predictions> align_rows(const std::vector<Predictions>& members, const std::vector<std::string>& sources) {
  EMBER_CHECK(!members.empty(), "align_rows: no members");
  auto source = [&](size_t j) { return j < sources.size() ? "'" + sources[j] + "'" : "member " + std::to_string(j); };
  const Predictions& first = members[0];
  std::unordered_map<std::string, int64_t> index;
  for (int64_t i = 0; i < first.rows(); ++i)
    EMBER_CHECK(index.emplace(first.names[i], i).second, "ensemble: ", source(0), " lists '", first.names[i],
                "' twice");
  std::vector<Predictions> out{first};
  for (size_t j = 1; j < members.size(); ++j) {
    const Predictions& m = members[j];
    EMBER_CHECK(m.num_classes == first.num_classes, "ensemble: ", source(j), " has ", m.num_classes, " classes, ",
                source(0), " has ", first.num_classes);
    EMBER_CHECK(m.rows() == first.rows(), "ensemble: ", source(j), " has ", m.rows(), " rows, ", source(0), " has ",
                first.rows(), " (predict the same images)");
    Predictions a = first;
    std::vector<char> seen(first.rows(), 0);
    for (int64_t i = 0; i < m.rows(); ++i) {
      auto it = index.find(m.names[i]);
      EMBER_CHECK(it != index.end(), "ensemble: '", m.names[i], "' is in ", source(j), " but not in ", source(0));
      int64_t r = it->second;
      EMBER_CHECK(!seen[r], "ensemble: ", source(j), " lists '", m.names[i], "' twice");
      seen[r] = 1;
      EMBER_CHECK(m.labels[i] == first.labels[r], "ensemble: '", m.names[i], "' has label ", m.labels[i], " in ",
                  source(j), " but ", first.labels[r], " in ", source(0));
      std::copy(m.row(i), m.row(i) + m.num_classes, a.probs.begin() + r * m.num_classes);
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace ember::apps
