// The chain loop of METHOD.md Stage 1 around any SentenceGenerator, with the filters, ordered and
// crash-safe output, resume and progress. Needs no libtorch.
//
// Loop per seed s: prev = cur = s; step k = 1..n: out = backend(current = cur, previous = prev);
// prev, cur = cur, out.
//
// Copy guard (RunOptions::retries > 0, for small LLMs that copy their input): a step whose output
// repeats the seed or an earlier sentence of the chain (compared lowercased, letters and digits
// only), that the step filter would drop (newline, empty) or that stopped at the token limit
// (a run-on), is asked again with attempt + 1, up to `retries` times; the outputs thrown away are
// recorded in the chain record ("retries"). The last attempt's output is taken as it is, so the
// filters still judge it (unless the drift guard has a better output of that step, below).
//
// Drift guard (RunOptions::drift_guard, with retries > 0): the chain's meaning should move away from
// the seed a little at every step. With s = cos(output, seed) and c = cos(current, seed) under the
// guard's encoder (e.g. the training teacher; never the encoder that later judges the chains), a
// step is retried like a copy when s > c + margin (reason "drift_back": it moved back toward the
// seed) or s < c - max_drop ("drift_jump": it left in one step). The guard shares the copy guard's
// retry budget. When the last attempt is refused by either guard and the drift guard refused an
// earlier output of the step, the step takes the one of those least outside the band instead (the
// last output joins the thrown-away ones and the chosen one leaves them); outputs only the copy
// guard refused are never chosen. The guard's EmbedFn must give each text the vector it gets alone
// (the CLI's runs one text per forward pass), so its decisions depend only on the text
// (determinism, below). Embedded: every seed once, and once each output the chain could take.
//
// The backend is kept full: up to capacity() steps in flight; a returned step immediately submits
// that chain's next step, and a finished chain frees its slot for the next seed.
//
// Output: one ChainRecord line per seed, in seed (id) order (a reorder buffer holds chains that
// finish early), each line written and flushed whole, so a killed run leaves complete lines plus
// at most one unfinished last line. The run-settings sidecar (chains/settings.h) records what
// produced the file; resuming checks it, cuts off an unfinished last line (chains/chain_file.h),
// skips the chains already written and continues, so the file ends byte-identical to an
// uninterrupted run (backends are deterministic per request, see sentence_generator.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rankemb/chains/record.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/generate/sentence_generator.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::generate {

// The most retries the copy guard may make per step (each one is a whole LLM step).
constexpr int kMaxRetries = 16;

// DriftGuard::max_drop that never refuses a step (cosines differ by at most 2).
constexpr double kNoMaxDrop = 2.0;

// The drift guard's settings (see the top of this file).
struct DriftGuard {
  EmbedFn embed;       // texts -> vectors; must give a text the same vector whatever else it is called with
  std::string model;   // what `embed` is, e.g. its directory (recorded in the meta)
  double margin = 0.0;  // retry when cos(out, seed) > cos(current, seed) + margin
  double max_drop = kNoMaxDrop;  // retry when cos(out, seed) < cos(current, seed) - max_drop
};

struct RunOptions {
  int steps = 32;                  // n: sentences generated per chain
  std::filesystem::path output;    // JSONL; the settings sidecar goes to chains::meta_path(output)
  bool resume = false;             // continue an existing output (its meta must match)
  bool overwrite = false;          // replace an existing output
  // What the meta records about the seeds (the runner gets the selected seeds only).
  std::string seed_file_name;
  std::uint64_t seed_file_size = 0;
  std::string seed_file_hash;
  Shard shard;
  std::optional<std::size_t> limit;
  int retries = 0;  // copy guard: retries per step (0 = the paper's loop, no guard)
  std::optional<DriftGuard> drift_guard;  // needs retries > 0
  // Backend settings that change the output (max_new_tokens, prompt, chat template, sampling,
  // dtype, ...): recorded in the meta and compared on resume. Any JSON value; null if none.
  nlohmann::json settings;
  // Finished chains held back waiting for an earlier one before new seeds stop being started
  // (bounds memory when one chain is slow); 0 = 4 x capacity, at least 64.
  std::size_t max_buffered = 0;
};

struct RunSummary {
  std::size_t chains_resumed = 0;  // already in the output when the run started (not regenerated)
  std::size_t chains_written = 0;  // written by this run
  std::size_t kept = 0, dropped = 0;  // of chains_written
  std::map<std::string, std::size_t> dropped_by_reason;  // reason name -> count, of chains_written
  std::uint64_t new_tokens = 0;    // StepResult::new_tokens summed over this run
  std::uint64_t steps_run = 0;     // backend requests completed in this run (retries included)
  std::uint64_t retries = 0;       // of steps_run, copy-guard retries (drift-guard ones included)
  std::uint64_t drift_retries = 0;  // of retries, those the drift guard asked for (also when the
                                    // output it refused was taken back in the end)
  double seconds = 0;              // wall time of this run
};

// Fills the seed-file fields of `options` (what the meta records) from the file the seeds came from.
void set_seed_file(RunOptions& options, const SeedFile& file);

// The meta JSON a run with these options and this backend writes over `n_seeds` selected seeds
// (recorded as "seeds", so that merge can tell a complete shard from one killed between lines).
nlohmann::json run_meta(const SentenceGenerator& backend, const RunOptions& options, std::size_t n_seeds);

// Runs every seed of `seeds` (ids strictly increasing) through the loop into options.output.
// Throws Error(Usage) when the output exists and neither resume nor overwrite is set, when both are
// set, or when steps < 1; Error(Usage) when resuming with settings that do not match; Error(Input)
// when an existing output line is not the record expected at that position. Backend errors pass
// through; everything written before them stays valid for --resume.
RunSummary run_chains(SentenceGenerator& backend, const std::vector<Seed>& seeds, const RunOptions& options,
                      Progress& progress);

// The records of `seeds` (ids strictly increasing) through the same loop as run_chains (copy guard
// with `retries`, the drift guard when given, filters), kept in memory instead of written: one per seed, in seed order, each
// what run_chains would write on that seed's line. For callers that answer with chains (the
// server's /v1/chains). Throws like run_chains for steps < 1 or retries out of range.
std::vector<chains::ChainRecord> chain_records(SentenceGenerator& backend, const std::vector<Seed>& seeds, int steps,
                                              int retries, const std::optional<DriftGuard>& drift_guard = std::nullopt);

// "kept 10, dropped 2 (newline 1, repetition 1), 12345 tokens in 3.2 s (3858 tok/s)".
std::string format_run_summary(const RunSummary& summary);

}  // namespace rankemb::generate
