// Correlations against SciPy (tests/fixtures/eval/correlation.expected.jsonl, many ties), average
// precision against scikit-learn (rerank_ap.expected.jsonl), and MAP / MRR@10 against values
// worked out by hand below.
#include "rankemb/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "rankemb/util/error.h"

namespace ev = rankemb::eval;
using nlohmann::json;

namespace {

std::vector<json> read_jsonl(const std::string& name) {
  const auto path = rankemb::test::fixtures_dir() / "eval" / name;
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path << "; run /usr/bin/python3 scripts/regen/eval_metrics.py";
  std::vector<json> rows;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != '#') rows.push_back(json::parse(line));
  return rows;
}

// Equal within `tol`, or both NaN (SciPy's nan is stored as null).
bool close(double got, const json& want, double tol) {
  if (want.is_null()) return std::isnan(got);
  return std::abs(got - want.get<double>()) <= tol;
}

}  // namespace

TEST(EvalMetrics, CorrelationsMatchScipy) {
  const auto rows = read_jsonl("correlation.expected.jsonl");
  ASSERT_GE(rows.size(), 8u);
  int mismatches = 0;
  for (const auto& r : rows) {
    const auto x = r["x"].get<std::vector<double>>();
    const auto y = r["y"].get<std::vector<double>>();
    const double p = ev::pearson(x, y), s = ev::spearman(x, y);
    if (!close(p, r["pearson"], 1e-9) || !close(s, r["spearman"], 1e-9)) {
      if (++mismatches <= 5)
        ADD_FAILURE() << r["name"] << ": pearson " << p << " (scipy " << r["pearson"] << "), spearman " << s << " (scipy " << r["spearman"]
                      << ")";
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << rows.size();
}

TEST(EvalMetrics, AverageRanksShareTies) {
  const std::vector<double> x = {3, 1, 3, 2, 3};
  // sorted: 1 (rank 1), 2 (rank 2), 3 3 3 (ranks 3, 4, 5 -> 4 each)
  EXPECT_EQ(ev::average_ranks(x), (std::vector<double>{4, 1, 4, 2, 4}));
}

TEST(EvalMetrics, LengthMismatchThrows) {
  const std::vector<double> a = {1, 2, 3}, b = {1, 2};
  EXPECT_THROW(ev::pearson(a, b), rankemb::Error);
  EXPECT_THROW(ev::spearman(a, b), rankemb::Error);
}

TEST(EvalMetrics, CosineIsSentEvals) {
  const std::vector<float> a = {1, 2, 2}, b = {2, 0, 0}, zero = {0, 0, 0};
  EXPECT_DOUBLE_EQ(ev::cosine(a, b), 2.0 / (3.0 * 2.0));
  EXPECT_DOUBLE_EQ(ev::cosine(a, a), 1.0);
  EXPECT_EQ(ev::cosine(a, zero), 0.0);  // NaN in NumPy, nan_to_num -> 0 in SentEval
}

TEST(EvalMetrics, AveragePrecisionMatchesSklearn) {
  const auto rows = read_jsonl("rerank_ap.expected.jsonl");
  ASSERT_GE(rows.size(), 10u);
  int mismatches = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto scores = rows[i]["scores"].get<std::vector<double>>();
    const auto rel = rows[i]["relevant"].get<std::vector<bool>>();
    const double ap = ev::average_precision(scores, rel);
    if (!close(ap, rows[i]["ap"], 1e-12) && ++mismatches <= 5)
      ADD_FAILURE() << "row " << i << ": ap " << ap << ", sklearn " << rows[i]["ap"];
  }
  EXPECT_EQ(mismatches, 0) << "of " << rows.size();
}

TEST(EvalMetrics, MapAndMrrHandComputed) {
  // A: sorted ranks 1..5 are F T F T F. AP = (P@2 + P@4) / 2 = (1/2 + 2/4) / 2 = 0.5; RR = 1/2.
  {
    const std::vector<double> s = {0.9, 0.8, 0.7, 0.6, 0.5};
    const auto m = ev::rank_metrics(s, {false, true, false, true, false});
    EXPECT_DOUBLE_EQ(m.average_precision, 0.5);
    EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.5);
    EXPECT_TRUE(m.usable);
  }
  // B: 12 candidates, the only positive at rank 11. AP = P@11 = 1/11; RR@10 = 0 (outside the
  // top 10), RR@11 = 1/11.
  {
    std::vector<double> s;
    std::vector<bool> rel(12, false);
    for (int i = 12; i >= 1; --i) s.push_back(i);
    rel[10] = true;
    const auto m = ev::rank_metrics(s, rel);
    EXPECT_DOUBLE_EQ(m.average_precision, 1.0 / 11.0);
    EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.0);
    EXPECT_DOUBLE_EQ(ev::reciprocal_rank_at_k(s, rel, 11), 1.0 / 11.0);
  }
  // C: unsorted input. Sorted: 0.9 F, 0.8 T, 0.3 T, 0.1 T. AP = (1/2 + 2/3 + 3/4) / 3 = 23/36;
  // RR = 1/2.
  {
    const std::vector<double> s = {0.3, 0.9, 0.1, 0.8};
    const auto m = ev::rank_metrics(s, {true, false, true, true});
    EXPECT_NEAR(m.average_precision, 23.0 / 36.0, 1e-15);
    EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.5);
  }
  // D: a tie between a negative and a positive at the top. AP treats the tie as one threshold:
  // precision there is 1/2, recall goes 0 -> 1, so AP = 1/2 whatever the order. RR keeps
  // candidate order: listed negative first -> rank 2 -> 1/2; positive first -> 1.
  {
    const std::vector<double> s = {0.5, 0.5, 0.2};
    EXPECT_DOUBLE_EQ(ev::average_precision(s, {false, true, false}), 0.5);
    EXPECT_DOUBLE_EQ(ev::average_precision(s, {true, false, false}), 0.5);
    EXPECT_DOUBLE_EQ(ev::reciprocal_rank_at_k(s, {false, true, false}), 0.5);
    EXPECT_DOUBLE_EQ(ev::reciprocal_rank_at_k(s, {true, false, false}), 1.0);
  }
  // E, F: no positive / no negative: MTEB skips such queries (not usable).
  {
    const std::vector<double> s = {0.5, 0.4};
    const auto none = ev::rank_metrics(s, {false, false});
    EXPECT_FALSE(none.usable);
    EXPECT_EQ(none.average_precision, 0.0);
    EXPECT_EQ(none.reciprocal_rank, 0.0);
    EXPECT_FALSE(ev::rank_metrics(s, {true, true}).usable);
  }
}
