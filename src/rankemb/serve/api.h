// rankemb::serve API shapes: the request bodies of the HTTP endpoints parsed into typed requests,
// and the typed results rendered into the response bodies clients expect.
//   OpenAI      POST /v1/embeddings      {"input": str | [str], "model", "encoding_format", "dimensions"}
//   TEI         POST /embed              {"inputs": str | [str], "normalize", "truncate"}
//               POST /rerank             {"query", "texts", "raw_scores", "return_text", "truncate"}
//   rankemb     POST /search             {"query": str | [str], "k"}
// Parsing is strict and names the offending field: malformed JSON, a wrong type, a missing or
// unknown-valued field is an ApiError(400); limits (inputs per request, body size) are checked
// here too (413). No libtorch and no sockets: the parsers are fuzzed (fuzz/http_bodies.cpp).
#pragma once

#include <cstddef>
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
