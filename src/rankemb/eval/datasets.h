// Loaders for the evaluation data in ../shared/data (see its README and PROVENANCE files): the
// STS sets (STS12-16, STS-B, SICK-R) in two text variants, the SentEval transfer tasks and the
// TREC-QA reranking JSONL. No libtorch. Every loader names the file and line of what it rejects:
// a missing file or a malformed line throws Error(Input); a row whose score is not a number or is
// out of range is left out and listed in the dataset's `skipped` report (never dropped silently).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::eval {

// $RANKEMB_DATA_DIR when set and non-empty, else "../shared/data" relative to the current
// directory (the layout of this workplace: the repo next to the shared folder).
std::filesystem::path default_data_dir();

// Which text of the STS sets a loader returns.
enum class TextVariant {
  // SentEval's files under senteval/ (Moses-tokenized, lower-cased STS12-16 and STS-B; SICK as
  // shipped), read exactly as SentEval's sts.py / sick.py read them, and each sentence split on
  // Python whitespace and re-joined with single spaces, which is what SentEval's batchers hand to
  // the encoder. Paper-comparable numbers come only from this variant.
  SentEval,
  // The organisers' text from the normalized TSVs (sts1x/, stsb/) and sick/, untouched.
  Raw,
};
std::string_view to_string(TextVariant v);              // "senteval" | "raw"
TextVariant parse_text_variant(std::string_view name);  // throws Error(Usage) on other names

// A row left out because of its score, with where it was and why.
struct SkippedRow {
  std::string where;   // "path:line"
  std::string reason;  // e.g. "score \"abc\" is not a number", "score 7 is outside [0, 5]"
};

struct StsPair {
  std::string sentence1, sentence2;  // the text the encoder sees
  double score = 0.0;                // gold similarity
  std::string where;                 // "path:line" of the pair, for messages
};

struct StsSubset {
  std::string name;  // "MSRpar", ... ; "test"/"dev"/... for STS-B and SICK-R
  std::vector<StsPair> pairs;
};

struct StsDataset {
  std::string name;  // "STS12" ... "STS16", "STSBenchmark", "SICKRelatedness"
  std::string split; // "test", "dev", "train"
  TextVariant variant = TextVariant::SentEval;
  std::vector<StsSubset> subsets;  // in SentEval's order
  std::vector<SkippedRow> skipped; // rows with an unusable score
  std::size_t n_unscored = 0;      // pairs whose gold line is empty (not scored by design)
  std::size_t n_pairs() const;
};

// STS12 ... STS16 (year 2012 ... 2016), the English test sets with SentEval's subsets (STS13
// without SMT). Gold scores must lie in [0, 5].
StsDataset load_sts_year(const std::filesystem::path& data_dir, int year, TextVariant variant);
// STS Benchmark, split "train" | "dev" | "test". Gold in [0, 5].
StsDataset load_stsb(const std::filesystem::path& data_dir, std::string_view split, TextVariant variant);
// SICK relatedness, split "train" | "dev" (SICK_trial.txt, SentEval's dev) | "test". Gold in [1, 5].
StsDataset load_sick_r(const std::filesystem::path& data_dir, std::string_view split, TextVariant variant);

// A SentEval transfer task. Sentences are split on whitespace and re-joined with single spaces
// as SentEval's batchers do; empty lines of the MR/CR/SUBJ/MPQA files are kept as empty texts,
// as SentEval keeps them (its CR and MPQA totals count them).
struct TransferSplit {
  std::vector<std::string> text;   // the sentence (MRPC: the first sentence)
  std::vector<std::string> text2;  // MRPC's second sentence; empty for the other tasks
  std::vector<int> label;          // index into TransferDataset::classes
  std::size_t size() const { return label.size(); }
};

struct TransferDataset {
  std::string name;                  // "MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC"
  std::vector<std::string> classes;  // label names; SentEval's label numbering
  bool cross_validation = false;     // MR/CR/SUBJ/MPQA: 10-fold CV over `train` (no dev/test)
  TransferSplit train, dev, test;    // dev is filled for SST2 only
};

// The seven task names, in the protocol's order.
const std::vector<std::string>& transfer_task_names();
// Loads transfer/<task>/ (files per its PROVENANCE.md). Labels as SentEval numbers them: MR/CR/
// MPQA pos = 1, neg = 0; SUBJ objective = 1, subjective = 0; TREC ABBR DESC ENTY HUM LOC NUM =
// 0..5; SST2 and MRPC as written. A malformed line or unknown label throws Error(Input) naming
// file:line; an unknown task name throws Error(Usage).
TransferDataset load_transfer(const std::filesystem::path& data_dir, std::string_view task);

// A reranking query (MTEB's format): candidates are positive + negative.
struct RerankQuery {
  std::string query;
  std::vector<std::string> positive, negative;
  std::string where;  // "path:line"
};
struct RerankDataset {
  std::string name;  // file stem, e.g. "trecqa_test"
  std::vector<RerankQuery> queries;  // every line, usable or not (MTEB skips queries lacking a
                                     // positive or a negative when scoring)
};
// One JSON object per line: {"query": str, "positive": [str], "negative": [str]}; blank lines are
// ignored. Bad JSON or a missing / mistyped field throws Error(Input) naming file:line.
RerankDataset load_rerank_jsonl(const std::filesystem::path& file);
// rerank/trecqa/trecqa_<split>.jsonl, split "train" | "dev" | "test".
RerankDataset load_trecqa(const std::filesystem::path& data_dir, std::string_view split);

// SentEval's whitespace handling: splits on Python's str.split() whitespace, joins with ' '.
std::string split_join_whitespace(std::string_view text);
// Python's str.splitlines() (without keepends) of UTF-8 text.
std::vector<std::string_view> python_splitlines(std::string_view text);

}  // namespace rankemb::eval
