#include "rankemb/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "rankemb/util/error.h"

namespace rankemb::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_same_size(std::size_t a, std::size_t b, const char* what) {
  RANKEMB_CHECK(a == b, ErrorCode::Other, "{}: inputs have different lengths ({} and {})", what, a, b);
}

}  // namespace

double pearson(std::span<const double> x, std::span<const double> y) {
  check_same_size(x.size(), y.size(), "pearson");
  const std::size_t n = x.size();
  if (n < 2) return kNaN;
  // Centring before multiplying keeps the sums well conditioned for large offsets (gold scores
  // in [0, 5] pooled over thousands of pairs); a one-pass formula loses digits there.
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(n);
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(n);
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0.0 || syy == 0.0) return kNaN;
  const double r = sxy / (std::sqrt(sxx) * std::sqrt(syy));
  return std::clamp(r, -1.0, 1.0);
}

std::vector<double> average_ranks(std::span<const double> x) {
  const std::size_t n = x.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && x[order[j]] == x[order[i]]) ++j;
    // Positions i..j-1 (0-based) hold equal values: each gets the mean of ranks i+1..j.
    const double r = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = r;
    i = j;
  }
  return ranks;
}

double spearman(std::span<const double> x, std::span<const double> y) {
  check_same_size(x.size(), y.size(), "spearman");
  const auto rx = average_ranks(x);
  const auto ry = average_ranks(y);
  return pearson(rx, ry);
}

double cosine(std::span<const float> a, std::span<const float> b) {
  check_same_size(a.size(), b.size(), "cosine");
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double u = a[i], v = b[i];
    dot += u * v;
    na += u * u;
    nb += v * v;
  }
  // Same operation order as NumPy's dot(u, v) / (norm(u) * norm(v)).
  const double denom = std::sqrt(na) * std::sqrt(nb);
  if (denom == 0.0) return 0.0;
  const double c = dot / denom;
  return std::isfinite(c) ? c : 0.0;
}

double average_precision(std::span<const double> scores, const std::vector<bool>& relevant) {
  check_same_size(scores.size(), relevant.size(), "average_precision");
  const std::size_t n = scores.size();
  const auto n_pos = static_cast<std::size_t>(std::count(relevant.begin(), relevant.end(), true));
  if (n_pos == 0) return 0.0;  // scikit-learn warns and returns 0 (recall undefined) here
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  double ap = 0.0;
  std::size_t tp = 0, seen = 0, tp_prev = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      tp += relevant[order[j]] ? 1 : 0;
      ++j;
    }
    seen = j;
    if (tp > tp_prev) {
      const double precision = static_cast<double>(tp) / static_cast<double>(seen);
      ap += (static_cast<double>(tp - tp_prev) / static_cast<double>(n_pos)) * precision;
    }
    tp_prev = tp;
    i = j;
  }
  return ap;
}

double reciprocal_rank_at_k(std::span<const double> scores, const std::vector<bool>& relevant, std::size_t k) {
  check_same_size(scores.size(), relevant.size(), "reciprocal_rank_at_k");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  const std::size_t top = std::min(k, order.size());
  for (std::size_t r = 0; r < top; ++r)
    if (relevant[order[r]]) return 1.0 / static_cast<double>(r + 1);
  return 0.0;
}

QueryRankMetrics rank_metrics(std::span<const double> scores, const std::vector<bool>& relevant, std::size_t mrr_k) {
  QueryRankMetrics m;
  const auto n_pos = static_cast<std::size_t>(std::count(relevant.begin(), relevant.end(), true));
  m.usable = n_pos > 0 && n_pos < relevant.size();
  m.average_precision = average_precision(scores, relevant);
  m.reciprocal_rank = reciprocal_rank_at_k(scores, relevant, mrr_k);
  return m;
}

}  // namespace rankemb::eval
