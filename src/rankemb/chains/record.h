// One generated ranking chain as `rankemb generate` writes it: one JSON object per line of the
// output JSONL, in seed-file order. chains::read_chains (training.h) reads these lines back for
// training (the training chain is [seed] + sentences; "kept": false lines are skipped).
//
// Line format (keys in this order, no spaces, UTF-8 kept as is, invalid UTF-8 from a backend
// replaced by U+FFFD so the line is always valid JSON):
//   {"id":7,"seed":"...","sentences":["...",...],"guidance":1.5,"model":"...","steps":32,
//    "kept":true,"drop_reason":"","retries":[{"step":3,"attempt":1,"reason":"copy","text":"..."}]}
// "retries" is present only when the copy or drift guard (chain_runner.h) retried a step: every
// output thrown away, with the step it was for, the attempt that produced it (0 = the first) and why.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::chains {

// One output the copy guard threw away.
struct StepRetry {
  int step = 0;         // 1-based step the output was for
  int attempt = 0;      // 0 = the first try of that step
  std::string reason;   // "copy" (repeats the seed or an earlier sentence), "newline", "empty", "token_limit",
                        // "drift_back" / "drift_jump" (the drift guard: closer to the seed than the
                        // sentence it rewrote / much further from it)
  std::string text;     // the output thrown away
  bool operator==(const StepRetry&) const = default;
};

struct ChainRecord {
  std::uint64_t id = 0;                // the seed's 0-based line index in the seed file
  std::string seed;                    // x0
  std::vector<std::string> sentences;  // x1..xn as generated (seed not included); partial when dropped early
  double guidance = 1.0;               // the backend's guidance scale g
  std::string model;                   // SentenceGenerator::model_name()
  int steps = 0;                       // n requested (a kept chain has exactly `steps` sentences)
  bool kept = true;
  std::string drop_reason;             // empty when kept; else a filters.h reason name
  std::vector<StepRetry> retries;      // outputs the copy guard replaced, in order
};

// The record as one JSON line, without the trailing newline. Deterministic: the same record gives
// the same bytes, which is what makes resumed and merged outputs byte-identical.
std::string format_chain_record(const ChainRecord& record);

// Parses one line written by format_chain_record. Throws Error(Input) "<where>: <reason>" on bad
// JSON, a missing key or a wrong type ("where" is "file:line").
ChainRecord parse_chain_record(std::string_view line, std::string_view where);

// Every record of a chain file, in file order. An unfinished last line (chain_file.h) is left out
// and reported through `unfinished`; any other bad line is Error(Input) naming file:line.
std::vector<ChainRecord> read_chain_records(const std::filesystem::path& path, bool* unfinished = nullptr);

}  // namespace rankemb::chains
