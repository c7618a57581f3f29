// rankemb::generate owns stage 1 of the method, the chain loop: seed files and shards (seeds.h),
// the filters (filters.h), the runner that drives a backend and writes the chain file
// (chain_runner.h), and this interface. The backends live in their own folders: lexical/ (offline)
// and llm/ (a causal LM with classifier-free guidance).
//
// This file: the contract between the chain loop (chain_runner.h) and a backend that writes one chain
// step: given the current sentence and the previous one, produce the next sentence, steered away
// from the previous one with guidance scale g. Two backends implement it: the in-process LLM with
// classifier-free guidance (llm/llm_generator.h) and the offline lexical editor
// (lexical/lexical_generator.h). Needs no libtorch.
//
// The interface is asynchronous so that an LLM backend can keep its batch full at token level
// (continuous batching): the runner submits up to capacity() requests, then calls poll()
// repeatedly; each poll advances the work (one decode iteration for an LLM, a whole batch of edits
// for the lexical backend) and returns the requests that finished. When a request finishes, the
// runner immediately submits the chain's next step, or the first step of the next seed.
//
// Determinism: a backend's output for a request must depend only on the request (its texts, its
// chain_id and step), never on which other requests share the batch, so that a resumed run or a
// sharded run gives the same chains as one uninterrupted run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::generate {

// The most requests a backend may be asked to keep in flight (its batch, capacity()). Larger
// batches stop paying on any machine rankemb targets and would reserve KV-cache slots for each;
// the bound is checked before anything is allocated.
constexpr std::size_t kMaxBatch = 4096;

struct StepRequest {
  std::uint64_t ticket = 0;  // chosen by the runner, echoed back in StepResult
  std::string current;       // positive prompt: the sentence to rewrite
  std::string previous;      // negative prompt: the sentence before it (== current at step 1)
  std::uint64_t chain_id = 0;  // the seed's index in the full seed file: per-chain RNG streams
  int step = 1;                // 1-based index of the sentence being generated
  // 0 for the first try of a step; k for the k-th retry by the copy guard (chain_runner.h). A
  // backend that can vary its output (the LLM: sampling) must give a retry a different, still
  // deterministic, output; one that cannot may ignore it.
  int attempt = 0;
};

struct StepResult {
  std::uint64_t ticket = 0;
  std::string text;          // the new sentence, already stripped of backticks/whitespace
  std::size_t new_tokens = 0;  // tokens generated (LLM) or edits made (lexical), for throughput
  bool hit_token_limit = false;  // stopped at max_new_tokens without EOS/end-of-turn
};

class SentenceGenerator {
 public:
  virtual ~SentenceGenerator() = default;
  // Requests that may be in flight at once (an LLM: chains per batch).
  virtual std::size_t capacity() const = 0;
  // Queues one request; at most capacity() may be pending. Throws Error on misuse.
  virtual void submit(StepRequest request) = 0;
  // Advances pending requests and returns those that finished (possibly none; never blocks
  // forever: with requests pending, repeated polls eventually return all of them).
  virtual std::vector<StepResult> poll() = 0;
  // Requests submitted and not yet returned by poll().
  virtual std::size_t pending() const = 0;
  // Recorded in every chain record's "model" field, e.g. "tinystories-656k" or "lexical:wordnet+glove".
  virtual std::string model_name() const = 0;
  // The guidance scale this backend applies (recorded in each chain record).
  virtual double guidance() const = 0;
};

// Strips surrounding whitespace and backticks (METHOD.md: "strip surrounding backticks and
// whitespace"), repeatedly, so "` `x` `" -> "x". Shared by every backend.
std::string strip_generated(std::string_view text);

}  // namespace rankemb::generate
