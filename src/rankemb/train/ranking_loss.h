// The ranking distillation loss of stage 2 (docs: ../shared/docs/METHOD.md, "Stage 2"):
//
//   S = cos(student) / temp            student scores, differentiable
//   A = cos(teacher) / tau2            frozen teacher scores (no grad)
//   B = refine(A)                      chain-order correction, `paper` or `relative` mode
//   Y = A + sign(B) ln(1 + omega |B|)  target scores
//   loss = ListMLE(S | order of each row of Y), every k x k entry, averaged over rows
//
// Each function reproduces the corresponding one in the authors' code
// (hly1998/RankingSentenceGeneration, posttraining/models.py: refine_similarity_matrix,
// transform_tensor, ListMLE.forward, and the cosine matrices of cl_forward / CLTrainer), operation
// for operation, so that float32 results agree with a PyTorch port to rounding. The two places
// where this code chooses differently are marked "Decision" below.
#pragma once

#include <cstdint>
#include <string_view>

#include <torch/types.h>

namespace rankemb::train {

// How refine() decides the sign of a correction (METHOD.md, "Decisions").
enum class RefineMode {
  Paper,     // the authors' code: teacher rank inside the segment compared with the absolute column j
  Relative,  // the paper's prose: compared with the chain distance j - i; differs for anchor rows i >= 2
};
// "paper" / "relative"; parse throws Error(Usage) naming the valid values.
std::string_view refine_mode_name(RefineMode mode);
RefineMode parse_refine_mode(std::string_view name);

struct LossOptions {
  double temp = 0.05;   // student temperature: S = cos / temp (SimCSE's --temp)
  double tau2 = 0.05;   // teacher temperature: A = cos / tau2 (RankCSE's default)
  double omega = 0.5;   // weight of the chain-order correction in Y (the authors' --omega)
  RefineMode mode = RefineMode::Paper;
};

// Pairwise cosine similarity divided by `temperature`: [k, d] -> [k, k], or [B, k, d] -> [B, k, k].
// Computed as the authors do (CosineSimilarity(dim=-1) of x.unsqueeze(1) and x.unsqueeze(0), eps 1e-8),
// in the input's dtype, differentiable.
torch::Tensor similarity_matrix(const torch::Tensor& emb, double temperature);

// B = refine(A) for one chain, A [k, k] floating point and finite (Error(Input) otherwise).
// B has A's dtype and device; the diagonal and upper triangle come from the forward segments
// A[i][i..k-1], the lower triangle mirrors the upper. Not differentiable (a teacher quantity).
// Decision: ties inside a segment are ordered by column (a stable sort); the authors' argsort is
// unstable, so on exact ties their order is whatever their sort returns.
torch::Tensor refine(const torch::Tensor& A, RefineMode mode = RefineMode::Paper);

// Y = A + sign(B) * ln(omega * |B| + 1), elementwise, in A's dtype (the authors' transform_tensor
// followed by the addition in cl_forward).
torch::Tensor ranking_target(const torch::Tensor& A, const torch::Tensor& B, double omega);

// The whole teacher side for one chain [k, d] or a batch [B, k, d] of teacher embeddings:
// A = similarity_matrix(teacher, tau2), B = refine(A, mode), returns Y ([k, k] or [B, k, k]).
// Computed without grad; depends only on the embeddings, so a trainer may cache it per chain.
torch::Tensor teacher_target(const torch::Tensor& teacher_emb, const LossOptions& options);

// A uniformly random permutation of 0..n-1 (int64, CPU) drawn with `generator` (a CPU generator);
// the same draw as torch.randperm(n, generator=g).
torch::Tensor random_permutation(int64_t n, torch::Generator& generator);

// ListMLE of scores S [r, n] under the order that sorts each row of targets Y [r, n] descending,
// after the columns of both are permuted by `perm` (int64 [n]; ties in Y keep the permuted
// order). Per row, with P the scores in target order and M = max P:
//   l = sum_m [ log(sum_{l >= m} exp(P_l - M) + 1e-7) - (P_m - M) ];  returns mean over rows.
// Differentiable in S. Decision: the authors' ListMLE (taken from allRank) also treats a target
// exactly equal to -1.0 as padding and drops it; chains have no padding, so this does not.
torch::Tensor list_mle_with_permutation(const torch::Tensor& S, const torch::Tensor& Y, const torch::Tensor& perm);
// The same with a random column permutation from `generator` (random tie-breaking, as the authors).
torch::Tensor list_mle(const torch::Tensor& S, const torch::Tensor& Y, torch::Generator& generator);

// The loss for one chain: student_emb [k, ds] (differentiable), teacher_emb [k, dt] (the teacher
// may have another width). Reduced-precision student embeddings are upcast to float32 first.
torch::Tensor ranking_distillation_loss(const torch::Tensor& student_emb, const torch::Tensor& teacher_emb,
                                        const LossOptions& options, torch::Generator& generator);
// The same from a precomputed target Y = teacher_target(teacher_emb, options).
torch::Tensor ranking_distillation_loss_from_target(const torch::Tensor& student_emb, const torch::Tensor& target,
                                                    const LossOptions& options, torch::Generator& generator);

// B chains of equal length k at once: student_emb [B, k, ds], teacher_emb [B, k, dt] (or a target
// [B, k, k] for the _from_target form). Each chain is its own k x k block with its own column
// permutation, drawn in chain order; the result is the mean of the per-chain losses, so B = 1
// gives exactly ranking_distillation_loss.
torch::Tensor ranking_distillation_loss_batched(const torch::Tensor& student_emb, const torch::Tensor& teacher_emb,
                                                const LossOptions& options, torch::Generator& generator);
torch::Tensor ranking_distillation_loss_batched_from_target(const torch::Tensor& student_emb,
                                                            const torch::Tensor& target, const LossOptions& options,
                                                            torch::Generator& generator);

}  // namespace rankemb::train
