// rankemb::serve Server: the embedding server behind `rankemb serve`, on cpp-httplib.
//   POST /v1/embeddings (OpenAI)   POST /embed, /rerank (TEI)   POST /search (with an index)
//   GET /health, /info (TEI), /metrics (Prometheus)
// Every embedding goes through one Batcher (dynamic batching across clients); responses equal
// encoding each input alone (the model pads per length-sorted chunk with attention masks).
// Safe by default: loopback unless told otherwise, optional Bearer key (all routes but /health),
// bounded body size, inputs per request, tokens per input (truncate or 413, as the request asks),
// bounded queue (429 + Retry-After), 503 while draining; stop() lets in-flight requests finish.
// No request reaches the filesystem: the routes read only the model and the loaded index.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "rankemb/search/index.h"
#include "rankemb/serve/api.h"
#include "rankemb/serve/batcher.h"
#include "rankemb/util/types.h"

namespace httplib {
class Server;
}

namespace rankemb::serve {

// What the server needs of an encoder (the CLI fills it from a models::SentenceEncoder).
struct EmbeddingModel {
  std::string id;                    // reported as "model" / "model_id"
  std::string dtype = "float32";
  std::string pooling = "mean";
  std::size_t dim = 0;
  std::size_t max_input_tokens = 512;  // specials included
  // Tokens of one text, specials included, untruncated. Called from many threads at once.
  std::function<std::size_t(const std::string&)> count_tokens;
  // Embeddings truncated to max_input_tokens, rows in input order. Called from one thread.
  EmbedFn embed;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                        // 0 = any free port (bind() returns it)
  std::string api_key;                    // empty: no authentication
  std::size_t max_body_bytes = 4 << 20;
  std::size_t http_threads = 64;          // concurrent connections served; more wait in the kernel
  bool auto_truncate = false;             // truncate over-long inputs where the API has no truncate field
  Limits limits;
  BatcherOptions batching;
};

class Server {
 public:
  // `index` (optional) enables POST /search; it must come from the same model (check_same_model).
  Server(EmbeddingModel model, ServerOptions options, std::shared_ptr<const search::IndexDir> index = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; Error(Usage) naming host:port when that fails. Returns the port.
  int bind();
  // Serves until stop(); returns once in-flight requests are answered.
  void run();
  // Thread- and signal-thread-safe: stop accepting, drain, make run() return.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rankemb::serve
