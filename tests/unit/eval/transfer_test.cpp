// The transfer-task classifier: multinomial logistic regression (libtorch L-BFGS) against
// scikit-learn's LogisticRegression with the same features and penalty on seeded synthetic tasks
// (scripts/regen/logreg.py -> tests/fixtures/eval/logreg.expected.jsonl; test accuracy within 0.5
// points for every penalty), plus stratified folds, F1, MRPC pair features and the protocol driver.
#include "rankemb/eval/transfer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "rankemb/util/error.h"

namespace ev = rankemb::eval;
using nlohmann::json;

namespace {

std::vector<json> logreg_cases() {
  const auto path = rankemb::test::fixtures_dir() / "eval" / "logreg.expected.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path << " (run /usr/bin/python3 scripts/regen/logreg.py)";
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') rows.push_back(json::parse(line));
  return rows;
}

ev::Features features(const json& rows) {
  ev::Features f;
  f.rows = rows.size();
  f.dim = rows.at(0).size();
  for (const auto& r : rows)
    for (const auto& v : r) f.values.push_back(v.get<double>());
  return f;
}

TEST(LogReg, AccuracyWithinHalfAPointOfScikitLearn) {
  const auto cases = logreg_cases();
  ASSERT_EQ(cases.size(), 2u);
  int mismatches = 0;
  for (const auto& c : cases) {
    const auto xtr = features(c["x_train"]), xte = features(c["x_test"]);
    const auto ytr = c["y_train"].get<std::vector<int>>(), yte = c["y_test"].get<std::vector<int>>();
    for (std::size_t i = 0; i < c["l2"].size(); ++i) {
      const double l2 = c["l2"][i].get<double>(), want = c["accuracy"][i].get<double>();
      const auto clf = ev::fit_logreg(xtr, ytr, c["n_classes"].get<std::size_t>(), {.l2 = l2});
      const double got = ev::accuracy(clf.predict(xte), yte);
      if (std::abs(got - want) > 0.005 + 1e-12) {
        if (++mismatches <= 5) ADD_FAILURE() << c["name"] << " l2=" << l2 << ": sklearn " << want << ", got " << got;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// Max |gradient| of the multinomial objective mean CE + l2 ||W||^2 (bias unpenalised) at `clf`:
// computed here with plain loops, independently of the solvers (Newton for two classes, L-BFGS
// otherwise), so a fit that stops short of the optimum fails.
double max_gradient(const ev::LogReg& clf, const ev::Features& x, const std::vector<int>& y, double l2) {
  const std::size_t c = clf.n_classes, d = clf.dim;
  std::vector<double> gw(c * d, 0.0), gb(c, 0.0);
  for (std::size_t i = 0; i < x.rows; ++i) {
    const auto r = x.row(i);
    std::vector<double> s(c);
    double mx = -1e300;
    for (std::size_t k = 0; k < c; ++k) {
      s[k] = clf.bias[k];
      for (std::size_t j = 0; j < d; ++j) s[k] += clf.weight[k * d + j] * r[j];
      mx = std::max(mx, s[k]);
    }
    double z = 0;
    for (auto& v : s) z += (v = std::exp(v - mx));
    for (std::size_t k = 0; k < c; ++k) {
      const double e = s[k] / z - (y[i] == static_cast<int>(k));
      gb[k] += e / x.rows;
      for (std::size_t j = 0; j < d; ++j) gw[k * d + j] += e * r[j] / x.rows;
    }
  }
  double g = 0;
  for (std::size_t k = 0; k < c * d; ++k) g = std::max(g, std::abs(gw[k] + 2 * l2 * clf.weight[k]));
  for (double v : gb) g = std::max(g, std::abs(v));
  return g;
}

TEST(LogReg, FitIsTheOptimumWhateverTheStart) {
  int failures = 0;
  for (const auto& c : logreg_cases()) {
    const auto xtr = features(c["x_train"]);
    const auto ytr = c["y_train"].get<std::vector<int>>();
    const auto n_classes = c["n_classes"].get<std::size_t>();
    const double tol = n_classes == 2 ? 1e-8 : 1e-5;  // Newton converges to 1e-10; L-BFGS stops at 1e-9 / change 1e-12
    for (double l2 : {1e-5, 1e-3, 1e-1}) {
      const auto cold = ev::fit_logreg(xtr, ytr, n_classes, {.l2 = l2});
      const auto other = ev::fit_logreg(xtr, ytr, n_classes, {.l2 = l2 * 100});
      const auto warm = ev::fit_logreg(xtr, ytr, n_classes, {.l2 = l2, .warm_start = &other});
      const double g_cold = max_gradient(cold, xtr, ytr, l2), g_warm = max_gradient(warm, xtr, ytr, l2);
      double dw = 0;
      for (std::size_t k = 0; k < cold.weight.size(); ++k) dw = std::max(dw, std::abs(cold.weight[k] - warm.weight[k]));
      if (g_cold > tol || g_warm > tol || dw > 1e-3) {
        if (++failures <= 5)
          ADD_FAILURE() << c["name"] << " l2=" << l2 << ": |grad| cold " << g_cold << ", warm " << g_warm << "; max |dW| " << dw;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(LogReg, RejectsBadInput) {
  ev::Features x{{1, 2, 3, 4}, 2, 2};
  EXPECT_THROW(ev::fit_logreg(x, {0}, 2, {}), rankemb::Error);
  EXPECT_THROW(ev::fit_logreg(x, {0, 2}, 2, {}), rankemb::Error);
}

TEST(Transfer, StratifiedFoldsPartitionAndBalance) {
  std::vector<int> y;
  for (int i = 0; i < 103; ++i) y.push_back(i % 3 == 0 ? 1 : 0);
  const auto folds = ev::stratified_folds(y, 10, 1111);
  ASSERT_EQ(folds.size(), 10u);
  std::set<std::size_t> all;
  for (const auto& f : folds) {
    all.insert(f.begin(), f.end());
    EXPECT_GE(f.size(), 10u);
    EXPECT_LE(f.size(), 11u);
    int pos = 0;
    for (auto i : f) pos += y[i];
    EXPECT_GE(pos, 3);
    EXPECT_LE(pos, 4);
  }
  EXPECT_EQ(all.size(), y.size());
  EXPECT_EQ(folds, ev::stratified_folds(y, 10, 1111));  // seeded
  EXPECT_NE(folds, ev::stratified_folds(y, 10, 7));
}

TEST(Transfer, F1OfThePositiveClass) {
  // tp = 2, fp = 1, fn = 1 -> F1 = 4 / 6.
  EXPECT_DOUBLE_EQ(ev::f1_score({1, 1, 1, 0, 0}, {1, 1, 0, 1, 0}), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(ev::f1_score({0, 0}, {0, 0}), 0.0);
  EXPECT_DOUBLE_EQ(ev::accuracy({1, 1, 1, 0, 0}, {1, 1, 0, 1, 0}), 0.6);
}

// Texts "p<i>" / "n<i>" embed to well separated points; the protocol must find them.
std::vector<std::vector<float>> toy(const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> out;
  for (const auto& t : texts) {
    const float i = static_cast<float>(std::stoi(t.substr(1)));
    const float sign = t[0] == 'p' ? 1.0f : -1.0f;
    out.push_back({sign * (1.0f + 0.01f * i), 0.3f * std::sin(i), 0.2f * std::cos(i)});
  }
  return out;
}

TEST(Transfer, CrossValidatedAndGivenSplitTasks) {
  ev::TransferDataset cv;
  cv.name = "MR";
  cv.classes = {"negative", "positive"};
  cv.cross_validation = true;
  for (int i = 0; i < 40; ++i) {
    cv.train.text.push_back((i % 2 ? "p" : "n") + std::to_string(i));
    cv.train.label.push_back(i % 2);
  }
  ev::TransferDataset mrpc;
  mrpc.name = "MRPC";
  mrpc.classes = {"0", "1"};
  auto add = [](ev::TransferSplit& s, int i) {
    // Paraphrase (1) when both sentences are on the same side.
    const bool para = i % 2;
    s.text.push_back("p" + std::to_string(i));
    s.text2.push_back((para ? "p" : "n") + std::to_string(i + 100));
    s.label.push_back(para ? 1 : 0);
  };
  for (int i = 0; i < 30; ++i) add(mrpc.train, i);
  for (int i = 30; i < 40; ++i) add(mrpc.test, i);

  ev::EmbeddingTable table;
  ev::add_texts(cv, table);
  ev::add_texts(mrpc, table);
  rankemb::NullProgress np;
  table.compute(toy, 0, np);

  const auto f = ev::transfer_features(mrpc, mrpc.test, table);
  EXPECT_EQ(f.dim, 12u);
  EXPECT_EQ(f.rows, 10u);
  const auto u = table.get(mrpc.test.text[0]), v = table.get(mrpc.test.text2[0]);
  EXPECT_DOUBLE_EQ(f.row(0)[6], std::abs(double(u[0]) - double(v[0])));
  EXPECT_DOUBLE_EQ(f.row(0)[9], double(u[0]) * double(v[0]));

  ev::TransferOptions o{.folds = 5, .inner_folds = 3};
  const auto r = ev::evaluate_transfer(cv, table, o);
  EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
  EXPECT_EQ(r.l2.size(), 5u);
  const auto m = ev::evaluate_transfer(mrpc, table, o);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.f1, 1.0);
  EXPECT_EQ(m.n_test, 10u);
  EXPECT_TRUE(std::isnan(r.f1));
}

}  // namespace
