// Evaluation metrics, all in double precision and free of libtorch: rank correlations for STS
// (SciPy's pearsonr/spearmanr semantics), cosine similarity (SentEval's, NaN mapped to 0) and the
// per-query reranking metrics MAP and MRR@k (MTEB's RerankingEvaluator semantics).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace rankemb::eval {

// Pearson's r of x and y (equal lengths; a length mismatch throws Error(Other)). Returns NaN when
// n < 2 or either input is constant, as SciPy does (it warns and returns nan). Two-pass: means
// first, then centred sums, clipped to [-1, 1].
double pearson(std::span<const double> x, std::span<const double> y);

// Ranks 1..n of `x`, tied values sharing the average of the ranks they span (SciPy's
// rankdata(method="average")). NaN inputs are not supported (callers map NaN to 0 first).
std::vector<double> average_ranks(std::span<const double> x);

// Spearman's rho: Pearson's r of the average ranks (SciPy's spearmanr for two 1-D inputs).
double spearman(std::span<const double> x, std::span<const double> y);

// Cosine similarity accumulated in double: dot(a, b) / (|a| * |b|). SentEval computes this in
// NumPy and applies nan_to_num, so a zero vector (0/0) gives 0 here instead of NaN.
double cosine(std::span<const float> a, std::span<const float> b);

// Reranking metrics of one query: `scores[i]` is candidate i's score, `relevant[i]` whether it is
// a positive. MTEB scores a query only when it has at least one positive and one negative
// (RerankingEvaluator skips the rest, so they count in neither the MAP nor the MRR mean); the
// `usable` flag says whether this query would be scored.
struct QueryRankMetrics {
  double average_precision = 0.0;  // scikit-learn's average_precision_score
  double reciprocal_rank = 0.0;    // 1 / rank of the first positive within the top k, else 0
  bool usable = false;             // >= 1 positive and >= 1 negative
};

// Average precision as scikit-learn's average_precision_score computes it: sum over distinct score
// thresholds (descending) of (recall step) x (precision at that threshold). Candidates with equal
// scores form one threshold, so ties do not depend on candidate order. 0 with no positives.
double average_precision(std::span<const double> scores, const std::vector<bool>& relevant);

// Reciprocal rank of the first positive among the top `k` candidates sorted by descending score,
// 0 when none is in the top k. Ties keep candidate order (a stable sort); MTEB passes positives
// before negatives, so a tie between a positive and a negative counts the positive first.
double reciprocal_rank_at_k(std::span<const double> scores, const std::vector<bool>& relevant, std::size_t k = 10);

// Both metrics for one query, plus MTEB's usability rule.
QueryRankMetrics rank_metrics(std::span<const double> scores, const std::vector<bool>& relevant, std::size_t mrr_k = 10);

}  // namespace rankemb::eval
