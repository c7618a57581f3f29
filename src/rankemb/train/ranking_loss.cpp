#include "rankemb/train/ranking_loss.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "rankemb/util/error.h"

namespace rankemb::train {

namespace {

// The authors add this inside the log of ListMLE (ListMLE.eps in posttraining/models.py).
constexpr double kListMleEps = 1e-7;
// torch.nn.CosineSimilarity's default eps, which the authors' Similarity module uses.
constexpr double kCosineEps = 1e-8;

std::string shape_of(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

void check_square(const torch::Tensor& m, std::string_view what) {
  RANKEMB_CHECK(m.dim() == 2 && m.size(0) == m.size(1), ErrorCode::Other, "{} must be a square matrix, got {}",
                what, shape_of(m));
  RANKEMB_CHECK(m.is_floating_point(), ErrorCode::Other, "{} must be floating point", what);
}

}  // namespace

std::string_view refine_mode_name(RefineMode mode) { return mode == RefineMode::Paper ? "paper" : "relative"; }

RefineMode parse_refine_mode(std::string_view name) {
  if (name == "paper") return RefineMode::Paper;
  if (name == "relative") return RefineMode::Relative;
  fail(ErrorCode::Usage, "unknown refine mode '{}', expected 'paper' or 'relative'", name);
}

torch::Tensor similarity_matrix(const torch::Tensor& emb, double temperature) {
  RANKEMB_CHECK(emb.dim() == 2 || emb.dim() == 3, ErrorCode::Other,
                "embeddings must be [k, d] or [B, k, d], got {}", shape_of(emb));
  RANKEMB_CHECK(temperature > 0, ErrorCode::Usage, "temperature must be > 0, got {}", temperature);
  // Broadcast [.., k, 1, d] against [.., 1, k, d] as the authors do, rather than normalize-then-matmul,
  // so that the rounding matches theirs; k is a chain length (33), so the k*k*d temporary is small.
  return torch::cosine_similarity(emb.unsqueeze(-2), emb.unsqueeze(-3), /*dim=*/-1, kCosineEps) / temperature;
}

torch::Tensor refine(const torch::Tensor& A, RefineMode mode) {
  check_square(A, "refine: A");
  const int64_t k = A.size(0);
  torch::NoGradGuard no_grad;
  RANKEMB_CHECK(torch::isfinite(A).all().item<bool>(), ErrorCode::Input,
                "refine: the teacher matrix has a non-finite entry");

  // The permutation work is index bookkeeping on a k x k matrix: do it on the CPU in double
  // (exact for every floating dtype), then apply it to A with tensor ops in A's own dtype so that
  // |A[i][j] - A'| rounds exactly as the authors' tensor arithmetic does.
  const torch::Tensor host = A.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const auto a = host.accessor<double, 2>();
  std::vector<int64_t> source(static_cast<size_t>(k * k));  // column of A holding A'[i][j]
  std::vector<int64_t> sign(static_cast<size_t>(k * k), 1);
  std::vector<int64_t> order;  // order[p] = chain distance of the p-th largest in the segment
  std::vector<int64_t> rank;   // rank[d] = position of distance d in that order
  for (int64_t i = 0; i < k; ++i) {
    const int64_t n = k - i;
    order.resize(static_cast<size_t>(n));
    rank.resize(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[i][i + x] > a[i][i + y]; });
    for (int64_t p = 0; p < n; ++p) rank[static_cast<size_t>(order[static_cast<size_t>(p)])] = p;
    for (int64_t j = 0; j < k; ++j) {
      const size_t at = static_cast<size_t>(i * k + j);
      if (j < i) {
        source[at] = j;  // lower triangle: filled by the mirror below
        continue;
      }
      const int64_t d = j - i;
      // A' = sorted_values[d]: what column j would score if the teacher agreed with the chain.
      source[at] = i + order[static_cast<size_t>(d)];
      // The authors' code compares the in-segment rank with the absolute column index j
      // (sorted_position < j); the paper's prose means the chain distance d.
      const int64_t limit = mode == RefineMode::Paper ? j : d;
      sign[at] = rank[static_cast<size_t>(d)] < limit ? -1 : 1;
    }
  }
  const auto index = torch::tensor(source, torch::kLong).view({k, k}).to(A.device());
  const auto signs = torch::tensor(sign, torch::kLong).view({k, k}).to(A.options());
  const torch::Tensor Ad = A.detach();
  const torch::Tensor upper = signs * (Ad - Ad.gather(1, index)).abs();
  const auto rows = torch::arange(k, torch::TensorOptions().dtype(torch::kLong).device(A.device()));
  const torch::Tensor on_or_above = rows.unsqueeze(0) >= rows.unsqueeze(1);  // [i][j]: j >= i
  return torch::where(on_or_above, upper, upper.transpose(0, 1));
}

torch::Tensor ranking_target(const torch::Tensor& A, const torch::Tensor& B, double omega) {
  RANKEMB_CHECK(A.sizes() == B.sizes(), ErrorCode::Other, "ranking_target: A is {}, B is {}", shape_of(A),
                shape_of(B));
  RANKEMB_CHECK(omega >= 0, ErrorCode::Usage, "omega must be >= 0, got {}", omega);
  // Same operations and order as transform_tensor: log(w * |B| + 1), times sign(B), then + A.
  const torch::Tensor correction = torch::sign(B) * torch::log(B.abs() * omega + 1);
  return correction + A;
}

torch::Tensor teacher_target(const torch::Tensor& teacher_emb, const LossOptions& options) {
  torch::NoGradGuard no_grad;
  const torch::Tensor A = similarity_matrix(teacher_emb.detach(), options.tau2);
  if (A.dim() == 2) return ranking_target(A, refine(A, options.mode), options.omega);
  std::vector<torch::Tensor> targets;
  targets.reserve(static_cast<size_t>(A.size(0)));
  for (int64_t b = 0; b < A.size(0); ++b) {
    const torch::Tensor Ab = A[b];
    targets.push_back(ranking_target(Ab, refine(Ab, options.mode), options.omega));
  }
  return torch::stack(targets);
}

torch::Tensor random_permutation(int64_t n, torch::Generator& generator) {
  RANKEMB_CHECK(generator.device().is_cpu(), ErrorCode::Other, "random_permutation needs a CPU generator");
  // Keep the draw on the CPU whatever device the loss runs on, so that a seed gives the same
  // tie-breaking everywhere.
  return torch::randperm(n, generator, torch::TensorOptions().dtype(torch::kLong));
}

torch::Tensor list_mle_with_permutation(const torch::Tensor& S, const torch::Tensor& Y, const torch::Tensor& perm) {
  RANKEMB_CHECK(S.dim() == 2 && S.sizes() == Y.sizes(), ErrorCode::Other,
                "list_mle: scores {} and targets {} must be equal 2-D shapes", shape_of(S), shape_of(Y));
  RANKEMB_CHECK(perm.dim() == 1 && perm.size(0) == S.size(1) && perm.scalar_type() == torch::kLong,
                ErrorCode::Other, "list_mle: permutation must be int64 [{}], got {}", S.size(1), shape_of(perm));
  const torch::Tensor p = perm.to(S.device());
  const torch::Tensor S_shuffled = S.index_select(1, p);
  const torch::Tensor Y_shuffled = Y.index_select(1, p);
  // Stable, so that ties keep the random order the permutation gave them.
  const torch::Tensor order = std::get<1>(Y_shuffled.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  const torch::Tensor P = S_shuffled.gather(1, order);
  const torch::Tensor M = std::get<0>(P.max(/*dim=*/1, /*keepdim=*/true));
  const torch::Tensor P_minus_max = P - M;
  // Suffix sums as the authors compute them: flip, cumsum, flip.
  const torch::Tensor suffix = P_minus_max.exp().flip({1}).cumsum(1).flip({1});
  const torch::Tensor per_entry = torch::log(suffix + kListMleEps) - P_minus_max;
  return per_entry.sum(1).mean();
}

torch::Tensor list_mle(const torch::Tensor& S, const torch::Tensor& Y, torch::Generator& generator) {
  RANKEMB_CHECK(S.dim() == 2, ErrorCode::Other, "list_mle: scores must be 2-D, got {}", shape_of(S));
  return list_mle_with_permutation(S, Y, random_permutation(S.size(1), generator));
}

namespace {

torch::Tensor student_scores(const torch::Tensor& student_emb, double temp) {
  const bool reduced = student_emb.scalar_type() == torch::kHalf || student_emb.scalar_type() == torch::kBFloat16;
  return similarity_matrix(reduced ? student_emb.to(torch::kFloat) : student_emb, temp);
}

void check_chain_pair(const torch::Tensor& student_emb, const torch::Tensor& other, int64_t dims, bool other_is_target) {
  RANKEMB_CHECK(student_emb.dim() == dims, ErrorCode::Other, "student embeddings must be {}-D, got {}", dims,
                shape_of(student_emb));
  RANKEMB_CHECK(other.dim() == dims, ErrorCode::Other, "{} must be {}-D, got {}",
                other_is_target ? "target" : "teacher embeddings", dims, shape_of(other));
  const int64_t k = student_emb.size(dims - 2);
  RANKEMB_CHECK(other.size(dims - 2) == k && (dims == 2 || other.size(0) == student_emb.size(0)), ErrorCode::Other,
                "student {} and {} {} describe different chains", shape_of(student_emb),
                other_is_target ? "target" : "teacher", shape_of(other));
  if (other_is_target) {
    RANKEMB_CHECK(other.size(dims - 1) == k, ErrorCode::Other, "target must be k x k, got {}", shape_of(other));
  }
}

}  // namespace

torch::Tensor ranking_distillation_loss_from_target(const torch::Tensor& student_emb, const torch::Tensor& target,
                                                    const LossOptions& options, torch::Generator& generator) {
  check_chain_pair(student_emb, target, 2, true);
  const torch::Tensor S = student_scores(student_emb, options.temp);
  return list_mle(S, target.to(S.device(), S.scalar_type()), generator);
}

torch::Tensor ranking_distillation_loss(const torch::Tensor& student_emb, const torch::Tensor& teacher_emb,
                                        const LossOptions& options, torch::Generator& generator) {
  check_chain_pair(student_emb, teacher_emb, 2, false);
  return ranking_distillation_loss_from_target(student_emb, teacher_target(teacher_emb, options), options,
                                               generator);
}

torch::Tensor ranking_distillation_loss_batched_from_target(const torch::Tensor& student_emb,
                                                            const torch::Tensor& target, const LossOptions& options,
                                                            torch::Generator& generator) {
  check_chain_pair(student_emb, target, 3, true);
  RANKEMB_CHECK(student_emb.size(0) > 0, ErrorCode::Other, "a batch needs at least one chain");
  const torch::Tensor S = student_scores(student_emb, options.temp);
  const torch::Tensor Y = target.to(S.device(), S.scalar_type());
  // One ListMLE per chain (B is small; the paper uses 1), each with its own permutation, so that
  // B = 1 is bit-identical to the single-chain loss.
  std::vector<torch::Tensor> losses;
  losses.reserve(static_cast<size_t>(S.size(0)));
  for (int64_t b = 0; b < S.size(0); ++b) losses.push_back(list_mle(S[b], Y[b], generator));
  return losses.size() == 1 ? losses.front() : torch::stack(losses).mean();
}

torch::Tensor ranking_distillation_loss_batched(const torch::Tensor& student_emb, const torch::Tensor& teacher_emb,
                                                const LossOptions& options, torch::Generator& generator) {
  check_chain_pair(student_emb, teacher_emb, 3, false);
  return ranking_distillation_loss_batched_from_target(student_emb, teacher_target(teacher_emb, options), options,
                                                       generator);
}

}  // namespace rankemb::train
