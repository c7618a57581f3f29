// An evaluation run as `rankemb eval` performs it: which task groups to run (parse_tasks), running
// them over one embedding callback with every distinct sentence embedded once per run (run_eval),
// and the two renderings of the result: the full JSON (report_json) and the aligned text table
// (format_table, format_comparison for two models side by side). No libtorch: the model enters
// through EmbedFn, so the CLI, tests and training-time model selection share this code.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rankemb/eval/datasets.h"
#include "rankemb/eval/rerank.h"
#include "rankemb/eval/sts.h"
#include "rankemb/eval/transfer.h"
#include "rankemb/util/progress.h"

namespace rankemb::eval {

// What a --tasks list selects, each group in the protocol's order and without duplicates.
struct TaskSelection {
  // "sts12" ... "sts16", "stsb", "sickr" (the test sets); group name "sts" = all seven.
  std::vector<std::string> sts;
  // "dev": STS-B dev + SICK-R dev (the model-selection score).
  bool dev = false;
  // "trecqa" (TREC-QA test; group name "rerank" = trecqa) and/or paths of reranking JSONL files
  // in the generic format (any task name ending in ".jsonl"), in the order given.
  std::vector<std::string> rerank;
  // "mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc"; group name "transfer" = all seven.
  std::vector<std::string> transfer;
  bool empty() const { return sts.empty() && !dev && rerank.empty() && transfer.empty(); }
};

// Parses a comma-separated task list, e.g. "sts,dev", "stsb,sickr", "rerank,my/queries.jsonl",
// "transfer,mrpc". Names are case-insensitive; blanks around commas are ignored. An unknown name
// or an empty list throws Error(Usage) listing the valid names.
TaskSelection parse_tasks(std::string_view spec);

struct EvalOptions {
  std::filesystem::path data_dir;  // benchmark data; empty = default_data_dir()
  TextVariant text = TextVariant::SentEval;  // STS text variant (reranking files are used as they are)
  // Texts per EmbedFn call; 0 = all new texts of a group in one call, so an encoder that sorts
  // by length (SentenceEncoder::encode) pads least and reports its own progress.
  std::size_t embed_batch = 0;
  TransferOptions transfer;  // classifier protocol of the transfer tasks
};

// Wall time of one task group: embedding its (new) sentences plus scoring.
struct GroupTiming {
  std::string group;  // "sts", "dev", "rerank", "transfer"
  double seconds = 0;
  std::size_t n_embedded = 0;  // sentences embedded for this group (those not already embedded)
  double embed_seconds = 0;    // the embedding part of `seconds`
};

struct EvalReport {
  std::string model;  // label shown in the table and JSON (the model directory as given)
  TextVariant text = TextVariant::SentEval;
  std::filesystem::path data_dir;
  std::vector<StsResult> sts;  // selected test sets, protocol order
  std::vector<StsResult> dev;  // STS-B dev, SICK-R dev when selected
  std::vector<RerankResult> rerank;
  std::vector<TransferResult> transfer;  // protocol order
  std::vector<GroupTiming> timings;  // groups in the order run
  std::size_t embedding_dim = 0;
  std::size_t n_embedded = 0;  // distinct sentences embedded in the whole run
};

// Loads every selected data file first (so a missing or malformed file fails before any
// encoding), then runs the groups in the order sts, dev, rerank, transfer. `progress` is handed to the
// embedding table; with embed_batch = 0 it sees one step per group, so an encoder callback should
// report its own progress. Sentences shared between tasks or groups are embedded once.
EvalReport run_eval(const TaskSelection& tasks, const EvalOptions& options, const EmbedFn& embed, Progress& progress);

// The full results. Correlations, MAP and MRR are fractions as computed (the table shows x100);
// NaN becomes null. Layout:
//   {"model", "text", "data_dir", "embedding_dim", "n_embedded",
//    "sts"/"dev": {"tasks": [{"name", "split", "spearman", "pearson", "n", "mean_spearman",
//        "mean_pearson", "wmean_spearman", "wmean_pearson", "n_unscored",
//        "subsets": [{"name", "spearman", "pearson", "n"}], "skipped": [{"where", "reason"}]}],
//      "mean_spearman", "mean_pearson", "seconds"},
//    "rerank": {"tasks": [{"name", "map", "mrr_at_10", "n_queries", "n_scored"}], "mean_map",
//      "mean_mrr_at_10", "seconds"},
//    "transfer": {"tasks": [{"name", "accuracy", "f1" (MRPC), "l2": [chosen penalty per fit],
//      "n_train", "n_test", "n_fits", "seconds" (classifier only)}], "mean_accuracy", "seconds"}}
// Every group object also has "embed_seconds" (the encoding part of "seconds"), every task object
// "display", its display_name (the label the tables show).
// Groups that were not selected are absent.
nlohmann::json report_json(const EvalReport& report);

// The short display name of a result: "STS12", "STS-B", "SICK-R", "STS-B dev", "SICK-R dev",
// "TREC-QA" (trecqa_test) or the file stem of a generic reranking file.
std::string display_name(const StsResult& r);
std::string display_name(const RerankResult& r);
std::string display_name(const TransferResult& r);

// Aligned plain-text table, one section per group: STS rows give Spearman x 100 and Pearson x 100
// with two decimals and the pair count, then the group mean; reranking rows give MAP x 100 and
// MRR@10 x 100; transfer rows accuracy x 100 (and F1 for MRPC); a last line gives the time of
// each group. Ends with a newline.
std::string format_table(const EvalReport& report);

// Two runs side by side: per task the headline numbers (STS Spearman, MAP, MRR@10, accuracy) of `a` and
// `b` and b - a, and the group means. Tasks present in only one run show "-" for the other.
std::string format_comparison(const EvalReport& a, const EvalReport& b);

}  // namespace rankemb::eval
