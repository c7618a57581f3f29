// rankemb::report owns the HTML report of a run (`rankemb report`, the last step of `rankemb
// demo`): one self-contained page (inline CSS and SVG from plot/, no script, no font, nothing
// from the network) that shows the chains (kept/dropped by reason, drift from the seed by step
// with a 10-90 percentile band, similarity heatmaps, example chains), the training (loss and dev
// score by step, the selected checkpoint marked, the settings) and the evaluation (base vs
// refined per task with deltas as bars, reranking and transfer when present, the spread over
// runs when several are given).
//
// One source of truth: every number on the page is read from the files the CLI wrote
// (results.json, chain_stats.json, train/metrics.jsonl, <chains>.meta.json) or from
// quality::chain_stats_json of a chain file; nothing is recomputed here. Each number cell carries
// data-key="<where>" (e.g. "run0.sts.STSBenchmark.refined", "chains0.kept") so a test can compare
// the page with those files. The renderer accepts any JSON: a missing or mistyped field shows as
// "-" instead of failing, so a hand-edited or older file still gives a page.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rankemb::report {

// The chains of one generation run as the quality report measured them.
struct ChainSet {
  std::string label;     // e.g. "g = 1.5", shown in legends and headings
  std::string source;    // the file the statistics describe
  nlohmann::json stats;  // quality::chain_stats_json (with "examples" when recorded)
  nlohmann::json meta;   // the chain file's <file>.meta.json (null when absent)
};

// One pipeline run directory (pipeline/pipeline.h's layout).
struct Run {
  std::filesystem::path dir;
  nlohmann::json results;             // results.json (null when absent: an unfinished run)
  std::vector<nlohmann::json> metrics;  // train/metrics.jsonl records, in file order
  std::vector<ChainSet> chains;       // its chain_stats.json, when present
};

struct ReportInputs {
  std::vector<Run> runs;
  std::vector<ChainSet> chain_sets;  // chain files given on their own (e.g. a g = 1 control)
  std::string command;               // how the report was made, shown in the header
};

// Reads a run directory. Throws Error(Input) naming the file when the directory holds none of
// results.json, chain_stats.json and train/metrics.jsonl, or when one of them is not valid JSON
// (metrics.jsonl: an unparsable line other than an unfinished last one, named by line).
Run read_run(const std::filesystem::path& dir);

// The label of a chain file's statistics: "g = <guidance>" from its meta (or `fallback` when it
// has none), and the meta itself (null when <file>.meta.json is absent; Error(Input) when bad).
ChainSet chain_set(const std::filesystem::path& chain_file, nlohmann::json stats, const std::string& fallback = "");

// The page.
std::string render_report(const ReportInputs& inputs);

}  // namespace rankemb::report
