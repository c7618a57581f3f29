// rankemb::llm GuidedDecoder: the one decoding loop of classifier-free guidance, on token ids.
// Both users build on it: the chain backend (llm_generator.h: prompts from a sentence, a chain
// step per request) and text completions (completion.h: any prompt, `rankemb serve`'s
// /v1/completions).
//
// Per request there are two streams, each in its own CausalLm slot: positive (the prompt) and
// negative (the prompt steered away from). Both are extended with the same chosen token; at every
// token
//   score = logp_neg + g * (logp_pos - logp_neg)
// over float32 log-softmax outputs. When there is no negative prompt, it equals the positive one
// or g == 1, only the positive stream runs (the negative one could not change the choice). Greedy
// by default (argmax, ties -> lowest id); with temperature > 0, temperature/top-p sampling from
// the request's own RNG (DecodeRequest::rng_seed), so results never depend on which other
// requests share the batch.
//
// Each poll() is one forward call: it prefills the prompts of newly submitted requests and decodes
// one token for every running request (continuous batching). Finished requests free their slots
// at once. Prompt prefix reuse (GuidedDecoderOptions::shared_prefix): tokens most prompts start
// with are computed once into a spare slot, and each new stream starts with a copy of the keys and
// values it shares (CausalLm::copy_prefix), so prefill only runs on the rest.
// Not thread-safe: one caller drives a decoder, and the decoder owns every slot of its model
// while it has requests (it calls reserve(), which clears all slots).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace rankemb::models {
class CausalLm;
}
namespace rankemb::text {
class Tokenizer;
}

namespace rankemb::llm {

struct DecodeRequest {
  std::uint64_t ticket = 0;            // echoed in DecodeResult
  std::vector<std::int64_t> positive;  // the prompt's ids; not empty
  // The ids of the prompt guidance steers away from; empty = none (one stream).
  std::vector<std::int64_t> negative;
  double guidance = 1.0;               // g
  int max_new_tokens = 100;            // stop token included
  double temperature = 0.0;            // 0 = greedy
  double top_p = 1.0;                  // nucleus mass kept when sampling, in (0, 1]
  std::uint64_t rng_seed = 0;          // seeds the request's own sampling stream
  // Optional: called after every chosen token that is not a stop token, with all tokens generated
  // so far; true ends the request there (text completions' stop strings live above token level).
  std::function<bool(std::span<const std::int64_t>)> stop_after;
};

struct DecodeResult {
  std::uint64_t ticket = 0;
  std::vector<std::int64_t> tokens;  // generated; the stop token that ended it, if any, included
  bool stop_token = false;           // ended by one of the model's stop tokens (tokens.back())
  bool hit_token_limit = false;      // ended at max_new_tokens, by neither a stop token nor stop_after
  std::size_t streams = 1;           // 2 when a negative stream ran
};

struct GuidedDecoderOptions {
  std::size_t batch = 16;  // requests in flight (capacity()); 2 * batch model slots
  // Tokens most prompts start with (a chain prompt with an empty sentence); empty = no reuse. Used
  // only when the model can copy_prefix.
  std::vector<std::int64_t> shared_prefix;
};

class GuidedDecoder {
 public:
  // Throws Error(Usage) for a null model or a batch outside [1, generate::kMaxBatch].
  GuidedDecoder(std::shared_ptr<models::CausalLm> model, GuidedDecoderOptions options);

  std::size_t capacity() const { return options_.batch; }
  std::size_t pending() const { return active_.size(); }
  // Queues one request; Error(Usage) when capacity() are pending or the request is invalid
  // (empty prompt, max_new_tokens < 1, guidance not finite, temperature < 0, top_p outside (0, 1]).
  void submit(DecodeRequest request);
  // One forward call; returns the requests that finished in it, in submission order.
  std::vector<DecodeResult> poll();
  // Submits `requests` as room allows and polls until all are done; results in input order (the
  // requests' tickets are replaced by their indices). The decoder must have nothing pending.
  std::vector<DecodeResult> run(std::vector<DecodeRequest> requests);

 private:
  struct Stream {
    std::size_t slot = 0;
    std::vector<std::int64_t> prompt;
    std::size_t fed = 0;  // tokens of prompt + generated already in the slot's cache
  };
  struct Active {
    DecodeRequest request;
    Stream pos;
    std::optional<Stream> neg;  // absent when guidance cannot act
    std::vector<std::int64_t> generated;
    std::mt19937_64 rng;
  };

  void fill_prefix();
  void start_from_prefix(Stream& s);
  std::size_t take_slot();
  void release_slot(std::size_t slot);
  void ensure_room();
  DecodeResult finish(Active& a, bool stop_token, bool limit);

  std::shared_ptr<models::CausalLm> model_;
  GuidedDecoderOptions options_;
  std::vector<std::int64_t> stop_ids_;  // sorted
  std::int64_t vocab_ = 0;
  std::size_t n_slots_ = 0;
  std::size_t reserved_tokens_ = 0;
  std::vector<std::size_t> free_slots_;  // descending: back() is the lowest free slot
  Stream prefix_;                        // the shared prompt prefix in its own slot; empty prompt = none
  std::vector<Active> active_;           // in submission order
};

// The guided score of every token, score = lneg + g * (lpos - lneg) in float32, where lpos/lneg
// are the log-softmax of the two logit rows (`neg_logits` empty or g == 1: score = lpos exactly,
// as the decoder computes it with one stream). Exposed for the tests of the formula.
std::vector<float> guided_scores(std::span<const float> pos_logits, std::span<const float> neg_logits, double guidance);

// Greedy choice: the index of the largest score, the lowest index among equal ones.
std::int64_t argmax_lowest(std::span<const float> scores);

// The text of generated ids: special tokens skipped, ids past the tokenizer's vocabulary (padding
// rows of the embedding matrix, which have no text) left out. Stop tokens are the caller's to drop.
std::string decode_generated(const text::Tokenizer& tokenizer, std::span<const std::int64_t> ids);

}  // namespace rankemb::llm
