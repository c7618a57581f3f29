// The ranking distillation loss (src/rankemb/train/ranking_loss.h): hand-worked matrices (the
// worked example of METHOD.md, ties, anchor rows where `paper` and `relative` differ), ListMLE
// gradients against finite differences, and parity with a PyTorch port of the authors' code on
// random 33 x 33 chains (tests/fixtures/train/ranking_loss.expected.jsonl, written by
// scripts/regen/ranking_loss.py).
#include "rankemb/train/ranking_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/util/error.h"

namespace {

using rankemb::train::LossOptions;
using rankemb::train::RefineMode;
namespace rt = rankemb::train;

torch::Tensor matrix(const std::vector<std::vector<double>>& rows, torch::Dtype dtype = torch::kDouble) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const auto k = static_cast<int64_t>(rows.size());
  return torch::tensor(flat, torch::kDouble).view({k, static_cast<int64_t>(flat.size()) / k}).to(dtype);
}

torch::Tensor from_json(const nlohmann::json& j) {
  // The port writes float32 values as the shortest decimals that round-trip them.
  if (j.is_number()) return torch::tensor(j.get<double>(), torch::kDouble).to(torch::kFloat);
  if (j.front().is_number()) return torch::tensor(j.get<std::vector<double>>(), torch::kDouble).to(torch::kFloat);
  return matrix(j.get<std::vector<std::vector<double>>>(), torch::kFloat);
}

torch::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Worst |got - want| and where, for failure messages.
struct Diff {
  double worst = 0;
  std::string where;
};
void track(Diff& d, const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const auto diff = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs();
  const double m = diff.max().item<double>();
  if (m > d.worst || d.where.empty()) {
    d.worst = m;
    d.where = fmt::format("{} at flat index {}", what, diff.argmax().item<int64_t>());
  }
}

// ---- refine / ranking_target: METHOD.md's worked example -------------------------------------

// A = 20 * cos for a 4-sentence chain: row 0 segment [20, 18, 16, 17], row 1 segment
// [20, 14, 17.6]; rows 2 and 3 are in chain order.
torch::Tensor worked_example() {
  return matrix({{20, 18, 16, 17}, {18, 20, 14, 17.6}, {16, 14, 20, 15}, {17, 17.6, 15, 20}});
}

TEST(Refine, MethodWorkedExample) {
  const auto B = rt::refine(worked_example());
  // Row 0: s2 under-ranked (+1), s3 over-ranked (-1). Row 1: +3.6 and -3.6. Lower triangle mirrors.
  const auto want = matrix({{0, 0, 1, -1}, {0, 0, 3.6, -3.6}, {1, 3.6, 0, 0}, {-1, -3.6, 0, 0}});
  EXPECT_TRUE(torch::allclose(B, want, 0, 1e-12)) << B;
  // Only rows >= 2 can tell the modes apart; here those rows are in chain order.
  EXPECT_TRUE(torch::equal(rt::refine(worked_example(), RefineMode::Relative), B));
}

TEST(RankingTarget, MethodWorkedExample) {
  const auto A = worked_example();
  const auto Y = rt::ranking_target(A, rt::refine(A), 0.5);
  // METHOD.md: Y[0] = [20, 18, 16.405, 16.595], Y[1][2..3] = [15.03, 16.57].
  const double l1 = std::log(1.5), l36 = std::log(1 + 0.5 * 3.6);
  const auto want = matrix({{20, 18, 16 + l1, 17 - l1}, {18, 20, 14 + l36, 17.6 - l36},
                            {16 + l1, 14 + l36, 20, 15}, {17 - l1, 17.6 - l36, 15, 20}});
  EXPECT_TRUE(torch::allclose(Y, want, 0, 1e-12)) << Y;
  EXPECT_NEAR(Y[0][2].item<double>(), 16.405, 5e-4);
  EXPECT_NEAR(Y[0][3].item<double>(), 16.595, 5e-4);
  EXPECT_NEAR(Y[1][2].item<double>(), 15.03, 5e-3);
  EXPECT_NEAR(Y[1][3].item<double>(), 16.57, 5e-3);
  // omega = 0 leaves the teacher alone.
  EXPECT_TRUE(torch::equal(rt::ranking_target(A, rt::refine(A), 0.0), A));
}

TEST(Refine, FloatMatchesDoubleOnWorkedExample) {
  const auto Bf = rt::refine(worked_example().to(torch::kFloat));
  EXPECT_EQ(Bf.scalar_type(), torch::kFloat);
  // 17.6f - 14 is 3.6000004 in float; the rest is exact.
  EXPECT_TRUE(torch::allclose(Bf.to(torch::kDouble), rt::refine(worked_example()), 0, 1e-6));
}

// ---- ties --------------------------------------------------------------------------------------

TEST(Refine, TiesInChainOrderNeedNoCorrection) {
  // Row 0 segment [20, 15, 15, 10]: already descending, the tie keeps chain order.
  const auto A = matrix({{20, 15, 15, 10}, {15, 20, 12, 11}, {15, 12, 20, 11}, {10, 11, 11, 20}});
  const auto B = rt::refine(A);
  EXPECT_EQ(B[0].abs().sum().item<double>(), 0.0) << B;
  // Row 2 segment [20, 11]: in order. Row 1 segment [20, 12, 11]: in order.
  EXPECT_EQ(B.abs().sum().item<double>(), 0.0) << B;
}

TEST(Refine, TiesOutOfOrder) {
  // Row 0 segment [20, 10, 15, 15] sorts to [20, 15, 15, 10] (order 0, 2, 3, 1):
  //   j=1: teacher rank 3, not < 1 -> +|10 - 15| = +5
  //   j=2: rank 1 < 2 -> -|15 - 15| = 0
  //   j=3: rank 2 < 3 -> -|15 - 10| = -5
  const auto A = matrix({{20, 10, 15, 15}, {10, 20, 9, 8}, {15, 9, 20, 7}, {15, 8, 7, 20}});
  const auto B = rt::refine(A);
  const auto want = matrix({{0, 5, 0, -5}, {5, 0, 0, 0}, {0, 0, 0, 0}, {-5, 0, 0, 0}});
  EXPECT_TRUE(torch::equal(B, want)) << B;
  // A tie in the anchor column itself: the diagonal is corrected towards the segment maximum.
  const auto C = matrix({{20, 20, 3}, {20, 20, 5}, {3, 5, 20}});
  // Row 0 segment [20, 20, 3]: stable order keeps 0 before 1, both in place -> 0.
  EXPECT_EQ(rt::refine(C).abs().sum().item<double>(), 0.0) << rt::refine(C);
}

TEST(Refine, DiagonalBelowSegmentMaximum) {
  // refine() does not assume the anchor scores highest in its own segment (cosine makes it so,
  // up to rounding, but not any score): row 0 segment [5, 7, 1] -> sorted [7, 5, 1], order 1, 0, 2.
  //   j=0: rank 1, not < 0 -> +|5 - 7| = +2;  j=1: rank 0 < 1 -> -|7 - 5| = -2;  j=2: rank 2 -> 0.
  const auto A = matrix({{5, 7, 1}, {7, 9, 2}, {1, 2, 9}});
  const auto want = matrix({{2, -2, 0}, {-2, 0, 0}, {0, 0, 0}});
  EXPECT_TRUE(torch::equal(rt::refine(A), want)) << rt::refine(A);
}

// ---- anchor rows >= 2: paper vs relative --------------------------------------------------------

TEST(Refine, PaperAndRelativeDifferFromAnchorRowTwo) {
  // Rows 0 and 1 in chain order; row 2 segment (columns 2..4) = [20, 10, 12]: sorted [20, 12, 10],
  // order 0, 2, 1, so column 3 (distance 1) has teacher rank 2 and column 4 (distance 2) rank 1.
  //   relative (rank vs distance): j=3: 2 < 1? no -> +|10 - 12| = +2 (under-ranked, pushed up);
  //                                j=4: 1 < 2 -> -|12 - 10| = -2 (over-ranked, pushed down).
  //   paper (rank vs absolute j):  j=3: 2 < 3 -> -2;  j=4: 1 < 4 -> -2. The authors' code pushes
  //   both down: for i >= 2 every rank below i + distance counts as over-ranked.
  const auto A = matrix({{20, 19, 18, 17, 16},
                         {19, 20, 19, 18, 17},
                         {18, 19, 20, 10, 12},
                         {17, 18, 10, 20, 19},
                         {16, 17, 12, 19, 20}});
  const auto paper = rt::refine(A, RefineMode::Paper);
  const auto relative = rt::refine(A, RefineMode::Relative);
  EXPECT_EQ(paper[2][3].item<double>(), -2);
  EXPECT_EQ(paper[2][4].item<double>(), -2);
  EXPECT_EQ(relative[2][3].item<double>(), 2);
  EXPECT_EQ(relative[2][4].item<double>(), -2);
  // Mirrored, and nothing else differs.
  EXPECT_EQ(paper[3][2].item<double>(), -2);
  EXPECT_EQ(relative[3][2].item<double>(), 2);
  const auto differs = (paper != relative).nonzero();
  ASSERT_EQ(differs.size(0), 2) << paper << relative;
  // So the targets disagree on row 2: relative moves s3 up towards s4, paper moves it further down.
  const auto Yp = rt::ranking_target(A, paper, 0.5);
  const auto Yr = rt::ranking_target(A, relative, 0.5);
  EXPECT_NEAR(Yp[2][3].item<double>(), 10 - std::log(2.0), 1e-12);
  EXPECT_NEAR(Yr[2][3].item<double>(), 10 + std::log(2.0), 1e-12);
  EXPECT_NEAR(Yp[2][4].item<double>(), 12 - std::log(2.0), 1e-12);
}

TEST(Refine, ModeNamesAndErrors) {
  EXPECT_EQ(rt::parse_refine_mode("paper"), RefineMode::Paper);
  EXPECT_EQ(rt::parse_refine_mode("relative"), RefineMode::Relative);
  EXPECT_EQ(rt::refine_mode_name(RefineMode::Relative), "relative");
  try {
    rt::parse_refine_mode("Paper");
    ADD_FAILURE() << "no error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), rankemb::ErrorCode::Usage);
  }
  auto bad = worked_example();
  bad[1][2] = std::nan("");
  EXPECT_THROW(rt::refine(bad), rankemb::Error);
  EXPECT_THROW(rt::refine(torch::zeros({3, 4})), rankemb::Error);
}

// ---- ListMLE ------------------------------------------------------------------------------------

// The documented formula, straight from METHOD.md, in double, for one row already in target order.
double list_mle_row(const std::vector<double>& p) {
  const double m = *std::max_element(p.begin(), p.end());
  double loss = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    double tail = 0;
    for (size_t l = i; l < p.size(); ++l) tail += std::exp(p[l] - m);
    loss += std::log(tail + 1e-7) - (p[i] - m);
  }
  return loss;
}

TEST(ListMle, HandWorkedRows) {
  // Row 0: Y = [3, 1, 2] orders columns 0, 2, 1; P = [1, 0, 2], M = 2:
  //   log(e^-1 + e^-2 + 1 + eps) + 1 + log(e^-2 + 1 + eps) + 2 + log(1 + eps) = 3.5345342
  // Row 1: Y = [0, 5, 4] orders 1, 2, 0; P = [2, 2, 2]: log(3) + log(2) + 0 (+ eps terms).
  const auto S = matrix({{1, 2, 0}, {2, 2, 2}});
  const auto Y = matrix({{3, 1, 2}, {0, 5, 4}});
  const auto identity = torch::arange(3, torch::kLong);
  const double row0 = list_mle_row({1, 0, 2});
  const double row1 = list_mle_row({2, 2, 2});
  EXPECT_NEAR(row0, 3.5345342, 1e-7);
  EXPECT_NEAR(row1, std::log(6.0), 1e-6);
  EXPECT_NEAR(rt::list_mle_with_permutation(S, Y, identity).item<double>(), (row0 + row1) / 2, 1e-12);
  // Without ties in Y the permutation changes nothing.
  const auto perm = torch::tensor(std::vector<int64_t>{2, 0, 1});
  EXPECT_NEAR(rt::list_mle_with_permutation(S, Y, perm).item<double>(), (row0 + row1) / 2, 1e-12);
  // Shifting a row of S leaves it unchanged (the max subtraction), and so does an offset in Y.
  EXPECT_NEAR(rt::list_mle_with_permutation(S + 100, Y - 7, identity).item<double>(), (row0 + row1) / 2, 1e-12);
}

TEST(ListMle, TiesAreBrokenByThePermutation) {
  // Y = [1, 1, 0]: columns 0 and 1 tie. Kept in the permuted order.
  const auto S = matrix({{0, 5, 0}});
  const auto Y = matrix({{1, 1, 0}});
  const double zero_first = list_mle_row({0, 5, 0});
  const double one_first = list_mle_row({5, 0, 0});
  ASSERT_GT(std::abs(zero_first - one_first), 1.0);
  EXPECT_NEAR(rt::list_mle_with_permutation(S, Y, torch::tensor(std::vector<int64_t>{0, 1, 2})).item<double>(),
              zero_first, 1e-12);
  EXPECT_NEAR(rt::list_mle_with_permutation(S, Y, torch::tensor(std::vector<int64_t>{1, 0, 2})).item<double>(),
              one_first, 1e-12);
  EXPECT_NEAR(rt::list_mle_with_permutation(S, Y, torch::tensor(std::vector<int64_t>{2, 1, 0})).item<double>(),
              one_first, 1e-12);
  // With a generator both orders occur, and nothing else.
  auto gen = seeded(7);
  int n_zero = 0, n_one = 0;
  for (int t = 0; t < 200; ++t) {
    const double v = rt::list_mle(S, Y, gen).item<double>();
    if (std::abs(v - zero_first) < 1e-12) ++n_zero;
    else if (std::abs(v - one_first) < 1e-12) ++n_one;
    else ADD_FAILURE() << "unexpected loss " << v;
  }
  EXPECT_GT(n_zero, 50);
  EXPECT_GT(n_one, 50);
}

TEST(ListMle, GeneratorIsReproducible) {
  auto S = torch::randn({9, 9}, torch::kDouble);
  const auto Y = torch::randint(0, 3, {9, 9}, torch::kLong).to(torch::kDouble);  // many ties
  auto g1 = seeded(42), g2 = seeded(42), g3 = seeded(42);
  const double a = rt::list_mle(S, Y, g1).item<double>();
  EXPECT_EQ(a, rt::list_mle(S, Y, g2).item<double>());
  EXPECT_EQ(a, rt::list_mle_with_permutation(S, Y, rt::random_permutation(9, g3)).item<double>());
}

TEST(ListMle, GradientMatchesFiniteDifferences) {
  torch::manual_seed(3);
  const int64_t k = 7;
  auto S = (torch::randn({k, k}, torch::kDouble) * 3).requires_grad_(true);
  const auto Y = torch::randn({k, k}, torch::kDouble) * 5;
  const auto perm = torch::randperm(k, torch::kLong);
  rt::list_mle_with_permutation(S, Y, perm).backward();
  const auto grad = S.grad().clone();
  const double h = 1e-6;
  double worst = 0;
  torch::NoGradGuard no_grad;
  auto base = S.detach().clone();
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      auto plus = base.clone(), minus = base.clone();
      plus[i][j] += h;
      minus[i][j] -= h;
      const double fd = (rt::list_mle_with_permutation(plus, Y, perm).item<double>() -
                         rt::list_mle_with_permutation(minus, Y, perm).item<double>()) / (2 * h);
      worst = std::max(worst, std::abs(fd - grad[i][j].item<double>()));
    }
  }
  EXPECT_LT(worst, 1e-6);
  // Each row's gradient sums to ~0 (shift invariance up to the eps term).
  EXPECT_LT(grad.sum(1).abs().max().item<double>(), 1e-5);
}

TEST(RankingDistillationLoss, GradientMatchesFiniteDifferencesThroughCosine) {
  torch::manual_seed(5);
  const int64_t k = 6;
  auto student = torch::randn({k, 4}, torch::kDouble).requires_grad_(true);
  const auto teacher = torch::cumsum(torch::randn({k, 5}, torch::kDouble), 0);
  const LossOptions opts;
  auto g = seeded(11);
  rt::ranking_distillation_loss(student, teacher, opts, g).backward();
  const auto grad = student.grad().clone();
  const auto target = rt::teacher_target(teacher, opts);
  auto g_again = seeded(11);
  const auto perm = rt::random_permutation(k, g_again);
  auto loss_at = [&](const torch::Tensor& x) {
    return rt::list_mle_with_permutation(rt::similarity_matrix(x, opts.temp), target, perm).item<double>();
  };
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  double worst = 0;
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      auto plus = student.detach().clone(), minus = student.detach().clone();
      plus[i][j] += h;
      minus[i][j] -= h;
      worst = std::max(worst, std::abs((loss_at(plus) - loss_at(minus)) / (2 * h) - grad[i][j].item<double>()));
    }
  }
  EXPECT_LT(worst, 1e-6);
}

// ---- the full loss, batching, caching -----------------------------------------------------------

TEST(RankingDistillationLoss, CachedTargetAndBatchAgree) {
  torch::manual_seed(9);
  const int64_t k = 33;
  const auto students = torch::randn({3, k, 16});
  const auto teachers = torch::cumsum(torch::randn({3, k, 24}) * 0.4, 1);
  const LossOptions opts;
  // One chain: from embeddings == from the cached target, with the same generator state.
  auto g1 = seeded(1), g2 = seeded(1);
  const auto a = rt::ranking_distillation_loss(students[0], teachers[0], opts, g1);
  const auto b = rt::ranking_distillation_loss_from_target(students[0], rt::teacher_target(teachers[0], opts), opts, g2);
  EXPECT_EQ(a.item<float>(), b.item<float>());
  // B = 1 is bit-identical to one chain.
  auto g3 = seeded(1);
  EXPECT_EQ(rt::ranking_distillation_loss_batched(students.slice(0, 0, 1), teachers.slice(0, 0, 1), opts, g3)
                .item<float>(),
            a.item<float>());
  // B = 3: mean of the three chains, each drawing its permutation in chain order.
  auto g4 = seeded(2), g5 = seeded(2);
  const double batched = rt::ranking_distillation_loss_batched(students, teachers, opts, g4).item<double>();
  double sum = 0;
  for (int64_t c = 0; c < 3; ++c) sum += rt::ranking_distillation_loss(students[c], teachers[c], opts, g5).item<double>();
  EXPECT_NEAR(batched, sum / 3, 1e-6 * std::abs(batched));  // float32 means of ~300
  // The teacher width may differ from the student's; the loss has no grad into the teacher.
  auto t = teachers[0].clone().requires_grad_(true);
  auto s = students[0].clone().requires_grad_(true);
  auto g6 = seeded(3);
  rt::ranking_distillation_loss(s, t, opts, g6).backward();
  EXPECT_TRUE(s.grad().defined());
  EXPECT_FALSE(t.grad().defined());
  // bf16 students are scored in float32.
  auto g7 = seeded(1);
  const auto bf = rt::ranking_distillation_loss(students[0].to(torch::kBFloat16), teachers[0], opts, g7);
  EXPECT_EQ(bf.scalar_type(), torch::kFloat);
  EXPECT_NEAR(bf.item<double>(), a.item<double>(), 0.05 * std::abs(a.item<double>()));
}

TEST(RankingDistillationLoss, ShapeErrors) {
  auto g = seeded(0);
  const LossOptions opts;
  EXPECT_THROW(rt::ranking_distillation_loss(torch::randn({5, 4}), torch::randn({6, 4}), opts, g), rankemb::Error);
  EXPECT_THROW(rt::ranking_distillation_loss_batched(torch::randn({2, 5, 4}), torch::randn({3, 5, 4}), opts, g),
               rankemb::Error);
  EXPECT_THROW(rt::list_mle_with_permutation(torch::randn({3, 3}), torch::randn({3, 3}), torch::arange(2)),
               rankemb::Error);
}

// ---- parity with the PyTorch port of the authors' code ------------------------------------------

TEST(RankingLossParity, MatchesAuthorsPort) {
  const auto cases =
      rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "train" / "ranking_loss.expected.jsonl");
  ASSERT_GE(cases.size(), 4u);
  Diff d;
  int mismatches = 0;
  for (const auto& c : cases) {
    const std::string name = c.at("case");
    LossOptions opts;
    opts.temp = c.at("temp");
    opts.tau2 = c.at("tau2");
    opts.omega = c.at("omega");
    const auto teacher = from_json(c.at("teacher"));
    const auto student = from_json(c.at("student")).requires_grad_(true);
    const auto perm = torch::tensor(c.at("perm").get<std::vector<int64_t>>());

    const auto A = rt::similarity_matrix(teacher, opts.tau2);
    const auto S = rt::similarity_matrix(student, opts.temp);
    const auto Bp = rt::refine(A, RefineMode::Paper);
    const auto Br = rt::refine(A, RefineMode::Relative);
    const auto Yp = rt::ranking_target(A, Bp, opts.omega);
    const auto Yr = rt::ranking_target(A, Br, opts.omega);
    const auto loss = rt::list_mle_with_permutation(S, Yp, perm);
    loss.backward();
    torch::NoGradGuard no_grad;
    const auto loss_r = rt::list_mle_with_permutation(S, Yr, perm);

    Diff one;
    track(one, A, from_json(c.at("A")), name + " A");
    track(one, S, from_json(c.at("S")), name + " S");
    track(one, Bp, from_json(c.at("B_paper")), name + " B_paper");
    track(one, Br, from_json(c.at("B_relative")), name + " B_relative");
    track(one, Yp, from_json(c.at("Y_paper")), name + " Y_paper");
    track(one, Yr, from_json(c.at("Y_relative")), name + " Y_relative");
    track(one, loss, from_json(c.at("loss_paper")), name + " loss_paper");
    track(one, loss_r, from_json(c.at("loss_relative")), name + " loss_relative");
    track(one, student.grad(), from_json(c.at("grad_student_paper")), name + " grad_student_paper");
    // Signs of B must agree exactly: a sign flip is a logic difference, not rounding.
    if (!torch::equal(torch::sign(Bp), torch::sign(from_json(c.at("B_paper")))) ||
        !torch::equal(torch::sign(Br), torch::sign(from_json(c.at("B_relative"))))) {
      ADD_FAILURE() << name << ": signs of B differ";
    }
    // The rows where the modes differ, as the port found them: rows >= 2 only.
    std::set<int64_t> rows;
    const auto nz = (Bp != Br).nonzero();
    for (int64_t r = 0; r < nz.size(0); ++r) rows.insert(nz[r][0].item<int64_t>());
    EXPECT_EQ(std::vector<int64_t>(rows.begin(), rows.end()), c.at("rows_where_modes_differ").get<std::vector<int64_t>>())
        << name;
    EXPECT_TRUE(rows.empty() || *rows.begin() >= 2) << name;
    // The full loss through the public entry point with the same permutation drawn from the seed.
    auto gen = seeded(c.at("perm_seed").get<uint64_t>());
    const auto drawn = rt::random_permutation(static_cast<int64_t>(perm.size(0)), gen);
    if (!torch::equal(drawn, perm)) {
      ADD_FAILURE() << name << ": torch::randperm with seed " << c.at("perm_seed")
                    << " differs from torch.randperm in the port (libtorch version?)";
    }
    if (one.worst > 1e-5) {
      ++mismatches;
      ADD_FAILURE() << name << ": worst |diff| " << one.worst << " in " << one.where;
    }
    if (one.worst >= d.worst) d = one;
  }
  EXPECT_EQ(mismatches, 0);
  std::printf("[ parity ] %zu cases, worst |diff| %.3g (%s)\n", cases.size(), d.worst, d.where.c_str());
}

TEST(RankingLossParity, FullLossFromEmbeddingsMatchesPort) {
  const auto cases =
      rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "train" / "ranking_loss.expected.jsonl");
  for (const auto& c : cases) {
    LossOptions opts;
    auto gen = seeded(c.at("perm_seed").get<uint64_t>());
    const double got =
        rt::ranking_distillation_loss(from_json(c.at("student")), from_json(c.at("teacher")), opts, gen).item<double>();
    EXPECT_NEAR(got, c.at("loss_paper").get<double>(), 1e-5) << c.at("case");
  }
}

}  // namespace
