// rankemb::serve API shapes: the request bodies of the HTTP endpoints parsed into typed requests,
// and the typed results rendered into the response bodies clients expect.
//   OpenAI      POST /v1/embeddings      {"input": str | [str], "model", "encoding_format", "dimensions"}
//   TEI         POST /embed              {"inputs": str | [str], "normalize", "truncate"}
//               POST /rerank             {"query", "texts", "raw_scores", "return_text", "truncate"}
//   rankemb     POST /search             {"query": str | [str], "k"}
//   OpenAI      POST /v1/completions     {"prompt": str | [str], "model", "max_tokens", "temperature", "top_p",
//                                         "seed", "stop", + "negative_prompt", "guidance_scale", "chat"}
//   rankemb     POST /v1/chains          {"seed": str, "steps", "id", "guidance_scale", "max_tokens",
//                                         "temperature", "top_p", "random_seed"}
// Parsing is strict and names the offending field: malformed JSON, a wrong type, a missing or
// unknown-valued field is an ApiError(400); limits (inputs per request, body size) are checked
// here too (413). No libtorch and no sockets: the parsers are fuzzed (fuzz/http_bodies.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rankemb::serve {

// Which API family a response (and its error body) follows.
enum class Dialect { OpenAi, Tei };

// A request the server refuses: HTTP status, a message naming the field, and the field itself.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string field = {})
      : std::runtime_error(std::move(message)), status(status), field(std::move(field)) {}
  int status;
  std::string field;
};

// The error body of `dialect`: OpenAI {"error": {"message", "type", "param", "code"}};
// TEI {"error", "error_type"}.
std::string error_body(Dialect dialect, int status, std::string_view message, std::string_view field = {});

struct Limits {
  std::size_t max_inputs = 512;          // texts per request
  std::size_t max_input_bytes = 65536;   // bytes per text (tokens are checked by the server)
};

struct EmbeddingsRequest {          // OpenAI /v1/embeddings
  std::vector<std::string> inputs;
  bool base64 = false;              // encoding_format "base64" (default "float")
  std::optional<std::size_t> dimensions;
  std::string model;                // echoed back; any value accepted
};
EmbeddingsRequest parse_embeddings_request(std::string_view body, const Limits& limits);

struct EmbedRequest {               // TEI /embed
  std::vector<std::string> inputs;
  bool normalize = true;
  bool truncate = false;
};
EmbedRequest parse_embed_request(std::string_view body, const Limits& limits);

struct RerankRequest {              // TEI /rerank
  std::string query;
  std::vector<std::string> texts;
  bool raw_scores = false;
  bool return_text = false;
  bool truncate = false;
};
RerankRequest parse_rerank_request(std::string_view body, const Limits& limits);

struct SearchRequest {              // rankemb /search
  std::vector<std::string> queries;
  std::size_t k = 10;
};
SearchRequest parse_search_request(std::string_view body, const Limits& limits);

// Bounds of the generation routes: what one request may ask of the LLM.
struct LlmLimits {
  std::size_t max_prompts = 8;          // prompts per /v1/completions request (413 above)
  std::size_t max_prompt_bytes = 32768; // bytes per prompt, negative prompt or seed (413 above)
  std::size_t max_tokens = 512;         // max_tokens of a completion or of a chain step (400 above)
  std::size_t max_steps = 64;           // steps of a /v1/chains chain (400 above)
};

// The most stop strings a completion takes, as OpenAI's API.
constexpr std::size_t kMaxStopStrings = 4;

struct CompletionRequest {          // OpenAI /v1/completions, plus guidance
  std::vector<std::string> prompts;
  std::string model;                // echoed back; any value accepted
  std::size_t max_tokens = 16;      // OpenAI's default
  double temperature = 1.0;         // OpenAI's default; 0 = greedy; at most 2
  double top_p = 1.0;
  std::uint64_t seed = 0;           // sampling is always seeded (default 0), so answers are reproducible
  std::vector<std::string> stop;
  std::string negative_prompt;      // what guidance steers away from
  double guidance_scale = 1.0;      // g; 1 = unguided; != 1 needs negative_prompt
  bool chat = false;                // prompts through the model's chat template (default: raw text)
};
// Refuses with 400 naming the field: the OpenAI options rankemb does not implement when set to
// anything but their neutral value (n, best_of, stream, echo, logprobs, suffix, logit_bias,
// presence_penalty, frequency_penalty), since ignoring them would answer a different question.
CompletionRequest parse_completion_request(std::string_view body, const LlmLimits& limits);

struct ChainRequest {               // rankemb /v1/chains: one chain as `rankemb generate` writes it
  std::string seed;                 // the seed sentence
  std::size_t steps = 0;            // required
  std::uint64_t id = 0;             // the seed's id (its line in a seed file): the chain's RNG stream
  std::optional<double> guidance_scale;  // unset: the server's preset
  std::optional<std::size_t> max_tokens; // per step; unset: the server's preset
  double temperature = 0.0;         // generate's default: greedy
  double top_p = 1.0;
  std::uint64_t random_seed = 0;    // generate's --seed ("seed" is the sentence here)
};
ChainRequest parse_chain_request(std::string_view body, const LlmLimits& limits);

// One completion of a prompt, what /v1/completions reports of it.
struct CompletionChoice {
  std::string text;
  bool length = false;  // finish_reason "length" (the token limit), else "stop"
  std::size_t prompt_tokens = 0, completion_tokens = 0;
};
// OpenAI's completions response: {"id", "object": "text_completion", "created", "model",
// "choices": [{"index", "text", "finish_reason", "logprobs": null}], "usage"}.
std::string completions_response(const std::vector<CompletionChoice>& choices, std::string_view id, std::int64_t created,
                                 std::string_view model);

// OpenAI's embeddings response: one {"object": "embedding", "index", "embedding"} per row, the
// embedding a list of floats or base64 of little-endian float32.
std::string embeddings_response(const std::vector<std::vector<float>>& rows, bool base64, std::string_view model,
                                std::size_t prompt_tokens);
// TEI's /embed response: a list of lists of floats.
std::string embed_response(const std::vector<std::vector<float>>& rows);
// TEI's /rerank response: [{"index", "score", "text"?}] sorted by score, highest first.
std::string rerank_response(const std::vector<float>& scores, const std::vector<std::string>* texts);

// Base64 (RFC 4648, with padding) of `bytes`.
std::string base64_encode(std::string_view bytes);

}  // namespace rankemb::serve
