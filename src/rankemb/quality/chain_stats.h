// rankemb::quality owns the chain quality report, the stage between generating chains and
// training on them (`rankemb chains stats FILE --judge MODEL`, the pipeline's second stage):
// kept/dropped counts per reason, chain lengths, words per sentence, and how monotonically each
// kept chain drifts away from its seed under a judge encoder (any EmbedFn).
//
// Drift of one kept chain x0 (seed), x1..xn: s_i = cos(judge(x_i), judge(x0)); rho = Spearman(i, s_i)
// over i = 0..n. rho = -1 is a perfectly monotone drift; "monotonicity" is -rho so that higher is
// better. A chain whose similarities are all equal has no rho (counted as undefined). Every
// distinct sentence of the file is embedded once.
//
// For pictures (report/): the spread of s_k over chains at every step k, and a few example
// chains (the first kept and the first dropped ones in file order) with every sentence's
// similarity to the seed and, for the first kept ones, the full step-by-step cosine matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rankemb/chains/record.h"
#include "rankemb/util/types.h"
#include "rankemb/util/progress.h"

namespace rankemb::quality {

struct ValueStats {
  std::size_t n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double median = std::numeric_limits<double>::quiet_NaN();  // mean of the two middle values for even n
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
};
ValueStats summarize(std::vector<double> values);

struct DriftStats {
  std::size_t chains = 0;     // kept chains with a defined rho
  std::size_t undefined = 0;  // kept chains whose similarities to the seed are all equal
  double mean_spearman = std::numeric_limits<double>::quiet_NaN();  // mean rho (-1 = monotone drift)
  double monotonicity = std::numeric_limits<double>::quiet_NaN();   // -mean_spearman
  std::size_t steps_compared = 0;  // transitions i -> i+1 over all kept chains (i = 0..n-1)
  double share_steps_down = std::numeric_limits<double>::quiet_NaN();  // of those, s_{i+1} < s_i
  // Mean s_k over kept chains with at least k sentences, at k = 1, n/4, n/2, n (n = longest kept
  // chain; indices below 1 become 1; duplicates removed), with the number of chains averaged.
  struct AtStep {
    std::size_t step = 0;
    double mean_similarity = std::numeric_limits<double>::quiet_NaN();
    std::size_t chains = 0;
  };
  std::vector<AtStep> at_steps;
  // s_k over the kept chains that reach step k, for every k = 0..n: mean, standard deviation
  // (population), 10th and 90th percentile (linear interpolation between order statistics).
  struct StepBand {
    std::size_t step = 0, chains = 0;
    double mean = std::numeric_limits<double>::quiet_NaN(), sd = std::numeric_limits<double>::quiet_NaN();
    double p10 = std::numeric_limits<double>::quiet_NaN(), p90 = std::numeric_limits<double>::quiet_NaN();
  };
  std::vector<StepBand> by_step;
  std::size_t unique_sentences = 0;  // texts given to the judge for the statistics (examples not counted)
};

// One chain shown as it reads: x0 (seed) and x1..xn with s_i (s_0 = 1); `matrix` is
// cos(x_i, x_j) for i, j = 0..n when it was asked for, else empty.
struct ChainExample {
  std::uint64_t id = 0;
  bool kept = true;
  std::string drop_reason;
  std::vector<std::string> sentences;  // seed first
  std::vector<double> similarity;      // to the seed, one per sentence (empty without a judge)
  std::vector<std::vector<double>> matrix;
};

struct ChainStats {
  std::size_t chains = 0, kept = 0, dropped = 0;
  std::map<std::string, std::size_t> dropped_by_reason;
  ValueStats kept_length;         // generated sentences per kept chain (seed not counted)
  ValueStats dropped_length;      // generated sentences of dropped chains (where they stopped)
  ValueStats words_per_sentence;  // whitespace-separated words, generated sentences of kept chains
  ValueStats words_per_seed;      // the same for the seeds of kept chains
  bool partial_last_line = false;  // the file ended in an unfinished line (chains/chain_file.h), left out
  std::optional<DriftStats> drift;  // when a judge was given
  std::vector<ChainExample> examples;  // ChainStatsOptions::examples kept + as many dropped
};

struct ChainStatsOptions {
  std::size_t batch_size = 128;  // texts per judge call; 0 = all at once
  std::size_t examples = 0;      // example chains of each kind (kept, dropped) to record
  std::size_t matrices = 0;      // of the kept examples, how many get their similarity matrix
};

// Counts and lengths; the drift part only when `judge` is non-null.
ChainStats chain_stats(const std::vector<chains::ChainRecord>& records, const EmbedFn* judge,
                       const ChainStatsOptions& options, Progress& progress);

// The statistics of a chain file, with the drift part measured by the encoder `judge` (a model
// directory, loaded here; empty = counts and lengths only). An unfinished last line is left out
// and flagged in partial_last_line.
struct Judge {
  std::filesystem::path model;
  Dtype dtype = Dtype::Float32;
  int batch = 64;  // sentences per encoder call
};
ChainStats chain_file_stats(const std::filesystem::path& file, const Judge& judge, const ChainStatsOptions& options,
                            Progress& progress);

// An aligned plain-text table for the terminal.
std::string format_chain_stats(const ChainStats& stats);
nlohmann::json chain_stats_json(const ChainStats& stats);

}  // namespace rankemb::quality
