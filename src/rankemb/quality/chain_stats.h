// rankemb::quality owns the chain quality report, the stage between generating chains and
// training on them (`rankemb chains stats FILE --judge MODEL`, the pipeline's second stage):
// kept/dropped counts per reason, chain lengths, words per sentence, and how monotonically each
// kept chain drifts away from its seed under a judge encoder (any EmbedFn).
//
// Drift of one kept chain x0 (seed), x1..xn: s_i = cos(judge(x_i), judge(x0)); rho = Spearman(i, s_i)
// over i = 0..n. rho = -1 is a perfectly monotone drift; "monotonicity" is -rho so that higher is
// better. A chain whose similarities are all equal has no rho (counted as undefined). Every
// distinct sentence of the file is embedded once.
#pragma once

#include <cstddef>
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
  std::size_t unique_sentences = 0;  // texts given to the judge
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
};

struct ChainStatsOptions {
  std::size_t batch_size = 128;  // texts per judge call; 0 = all at once
};

// Counts and lengths; the drift part only when `judge` is non-null.
ChainStats chain_stats(const std::vector<chains::ChainRecord>& records, const EmbedFn* judge,
                       const ChainStatsOptions& options, Progress& progress);

// An aligned plain-text table for the terminal.
std::string format_chain_stats(const ChainStats& stats);
nlohmann::json chain_stats_json(const ChainStats& stats);

}  // namespace rankemb::quality
