// The STS evaluator: cosine similarity of two sentence embeddings against the gold score, Spearman
// and Pearson per subset, pooled over subsets (the "all" setting, the headline number for
// STS12-16), and the plain and pair-weighted means of the subsets (SentEval's "mean"/"wmean").
// Encoders plug in through EmbedFn, so this file knows nothing about models and needs no libtorch;
// every distinct sentence is embedded once per EmbeddingTable, however many pairs or tasks use it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rankemb/eval/datasets.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::eval {

// Distinct texts and their embeddings. add() queues texts; compute() embeds the queued texts in
// batches of `batch_size` (0 = all in one call) and keeps the rows; get() looks a text up.
class EmbeddingTable {
 public:
  void add(const std::string& text);
  // Throws Error(Other) when the callback returns the wrong number of vectors or a dimension that
  // differs from earlier rows.
  void compute(const EmbedFn& embed, std::size_t batch_size, Progress& progress);
  // The row of `text`; throws Error(Other) when it was never added and computed.
  std::span<const float> get(const std::string& text) const;
  std::size_t size() const { return n_done_; }  // texts embedded so far
  std::size_t pending() const { return pending_.size(); }
  std::size_t dim() const { return dim_; }

 private:
  std::unordered_map<std::string, std::size_t> index_;  // text -> row (pending rows included)
  std::vector<std::string> pending_;                   // queued, in first-seen order
  std::vector<float> rows_;                            // n_done_ x dim_
  std::size_t dim_ = 0, n_done_ = 0;
};

struct Correlation {
  double spearman = std::numeric_limits<double>::quiet_NaN();  // in [-1, 1]; x100 is for display
  double pearson = std::numeric_limits<double>::quiet_NaN();
  std::size_t n = 0;  // pairs
};

struct StsResult {
  std::string name, split;  // "STS12", "test"
  TextVariant variant = TextVariant::SentEval;
  std::vector<std::pair<std::string, Correlation>> subsets;  // SentEval's order
  Correlation all;  // every pair of every subset pooled: the headline ("all" setting)
  // Means over subsets, unweighted and weighted by pair count (SentEval's "mean" and "wmean").
  double mean_spearman = 0, mean_pearson = 0, wmean_spearman = 0, wmean_pearson = 0;
  std::vector<SkippedRow> skipped;  // copied from the dataset so reports carry them
  std::size_t n_unscored = 0;
};

struct StsOptions {
  std::size_t batch_size = 128;  // texts per EmbedFn call; 0 = all at once
};

// Scores `ds` with embeddings already in `table` (every sentence of `ds` must be there).
StsResult evaluate_sts(const StsDataset& ds, const EmbeddingTable& table);

// Embeds the distinct sentences of all `sets` once, then scores each set.
std::vector<StsResult> evaluate_sts(const std::vector<StsDataset>& sets, const EmbedFn& embed, const StsOptions& options,
                                    Progress& progress);

// The seven STS test sets of the protocol: STS12 ... STS16, STS-B test, SICK-R test.
std::vector<StsDataset> load_sts_tasks(const std::filesystem::path& data_dir, TextVariant variant);
// The model-selection set: STS-B dev and SICK-R dev (SICK_trial.txt).
std::vector<StsDataset> load_dev_tasks(const std::filesystem::path& data_dir, TextVariant variant);
// Mean of the headline Spearman of `results` (for the dev tasks: the model-selection score).
double mean_spearman(const std::vector<StsResult>& results);

}  // namespace rankemb::eval
