// The transfer-task evaluator (SentEval's protocol with frozen embeddings): L2-regularised
// logistic regression in libtorch (float64; two classes by Newton's method, more by full-batch
// L-BFGS; both converge to the unique optimum of the convex objective, so a fit does not depend on
// its starting point), the penalty chosen from a grid on validation data, 10-fold stratified
// cross-validation for MR/CR/SUBJ/MPQA and the given splits for SST-2/TREC/MRPC (MRPC features
// [u, v, |u-v|, u*v]); accuracy, and F1 of the positive class for MRPC. The interface is free of
// libtorch (only transfer.cpp uses it), so report.h stays torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "rankemb/eval/datasets.h"
#include "rankemb/eval/sts.h"

namespace rankemb::eval {

// A dense row-major feature matrix.
struct Features {
  std::vector<double> values;  // rows x dim
  std::size_t rows = 0, dim = 0;
  std::span<const double> row(std::size_t i) const { return std::span<const double>(values).subspan(i * dim, dim); }
};

struct LogReg;

struct LogRegOptions {
  // Objective: mean cross-entropy + l2 * ||W||^2 (the intercept is not penalised). scikit-learn's
  // LogisticRegression(C) minimises the same problem for C = 1 / (2 * l2 * n_train).
  double l2 = 1e-4;
  int max_iter = 500;  // L-BFGS iterations (Newton: max_iter / 5 steps, at least 100)
  // Starting point (same shape as the result), e.g. the fit at a neighbouring penalty or on an
  // overlapping fold; null = zeros. Changes only how many iterations a fit takes.
  const LogReg* warm_start = nullptr;
};

// A fitted classifier: scores = x W^T + b, prediction = argmax.
struct LogReg {
  std::vector<double> weight;  // n_classes x dim
  std::vector<double> bias;    // n_classes
  std::size_t n_classes = 0, dim = 0;
  std::vector<int> predict(const Features& x) const;
};

// Fits on `x` (rows = labels.size()) with labels in [0, n_classes). Throws Error(Other) on a size
// mismatch or an out-of-range label. Two classes: the multinomial objective depends on the weights
// only through w1 - w0 and its penalty is smallest at w0 = -w1, so it is solved as one binary
// logistic regression with penalty l2 / 2 (Newton, exact Hessian) and returned as rows -w/2, w/2.
LogReg fit_logreg(const Features& x, const std::vector<int>& labels, std::size_t n_classes, const LogRegOptions& options);

// Stratified k folds: each class's indices shuffled with `seed` and dealt round-robin, so fold
// sizes differ by at most one per class. Returns the test indices of each fold (sorted).
std::vector<std::vector<std::size_t>> stratified_folds(const std::vector<int>& labels, std::size_t k, std::uint64_t seed);

double accuracy(const std::vector<int>& predicted, const std::vector<int>& gold);
// F1 of class `positive` (0 when it is never predicted and never gold).
double f1_score(const std::vector<int>& predicted, const std::vector<int>& gold, int positive = 1);

struct TransferOptions {
  std::vector<double> l2_grid = {1e-5, 1e-4, 1e-3, 1e-2};  // penalties tried on validation
  std::size_t folds = 10;        // outer folds for the cross-validated tasks
  std::size_t inner_folds = 10;  // folds of the training part used to choose the penalty when a
                                 // task has no dev split (SentEval's nested cross-validation; its
                                 // InnerKFoldClassifier uses kfold = 10 inside each outer fold too)
  std::uint64_t seed = 1111;     // fold shuffling (SentEval's seed)
  int max_iter = 500;
};

struct TransferResult {
  std::string name;  // "MR", ...
  double accuracy = std::numeric_limits<double>::quiet_NaN();  // fraction; mean over folds for CV tasks
  double f1 = std::numeric_limits<double>::quiet_NaN();        // MRPC only
  std::vector<double> l2;  // the penalty chosen (one per outer fold for CV tasks)
  std::size_t n_train = 0, n_test = 0;  // CV tasks: all examples in n_train, n_test = 0
  std::size_t n_fits = 0;  // classifiers fitted (CV: folds x (inner folds x grid + 1))
  double seconds = 0;      // wall time of the classifier part (features, fits, predictions)
};

// Queues the sentences of `ds` in `table`.
void add_texts(const TransferDataset& ds, EmbeddingTable& table);

// Features of a split from the embeddings in `table`: the sentence vector, or for MRPC
// [u, v, |u-v|, u*v].
Features transfer_features(const TransferDataset& ds, const TransferSplit& split, const EmbeddingTable& table);

// Runs the protocol on `ds` with embeddings already in `table`.
TransferResult evaluate_transfer(const TransferDataset& ds, const EmbeddingTable& table, const TransferOptions& options);

}  // namespace rankemb::eval
