// rankemb::serve Server: the embedding server behind `rankemb serve`, on cpp-httplib.
//   POST /v1/embeddings (OpenAI)   POST /embed, /rerank (TEI)   POST /search (with an index)
//   POST /v1/completions (OpenAI), /v1/chains (rankemb) (with an LLM, `--llm`)
//   GET /health, /info (TEI), /metrics (Prometheus)
// Every embedding goes through one Batcher (dynamic batching across clients, on
// ServerOptions::batching.workers model workers); responses equal
// encoding each input alone (the model pads per length-sorted chunk with attention masks). Every
// generation goes through one JobQueue: the LLM works on one request at a time, on one thread.
// Safe by default: loopback unless told otherwise, optional Bearer key (all routes but /health),
// bounded body size, inputs per request, tokens per input (truncate or 413, as the request asks),
// bounded prompts, tokens and chain steps, bounded queues (429 + Retry-After), 503 while
// draining; stop() lets in-flight and queued requests finish.
// No request reaches the filesystem: the routes read only the models and the loaded index.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "rankemb/search/index.h"
#include "rankemb/serve/api.h"
#include "rankemb/serve/batcher.h"
#include "rankemb/serve/job_queue.h"
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
  // Embeddings truncated to max_input_tokens, rows in input order. Called from the model workers
  // (ServerOptions::batching.workers), as many at once.
  EmbedFn embed;
  // Optional: run first in each model worker thread, with its number and the number of workers.
  Batcher::WorkerStart worker_start;
};

// What the server needs of a text generator for /v1/completions and /v1/chains (the CLI fills it
// from an llm::TextCompleter and the chain backend of `rankemb generate`). Every function is
// called from the server's one LLM worker thread only.
struct TextModel {
  std::string id;                    // reported in /info ("llm")
  std::string preset;                // the chain settings /v1/chains runs with, reported in /info
  std::size_t context_tokens = 2048; // prompt + generated tokens one sequence may hold
  bool has_chat_template = false;    // whether "chat": true can be honoured
  // Tokens the model is fed for `prompt` (through the chat template when `chat`).
  std::function<std::size_t(const std::string& prompt, bool chat)> count_prompt_tokens;
  // One choice per prompt, in order.
  std::function<std::vector<CompletionChoice>(const CompletionRequest&)> complete;
  // The chain record `rankemb generate` writes for this seed, without its newline.
  std::function<std::string(const ChainRequest&)> chain;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                        // 0 = any free port (bind() returns it)
  std::string api_key;                    // empty: no authentication
  std::size_t max_body_bytes = 4 << 20;
  std::size_t http_threads = 64;          // connections served at once (1-1024); as many more are accepted
                                          // and wait, the rest wait in the kernel's listen backlog
  bool auto_truncate = false;             // truncate over-long inputs where the API has no truncate field
  Limits limits;
  BatcherOptions batching;
  LlmLimits llm_limits;
  std::size_t llm_queue = 4;              // generation requests waiting behind the running one (429 above)
};

class Server {
 public:
  // `index` (optional) enables POST /search; it must come from the same model (check_same_model).
  // `llm` (optional) enables POST /v1/completions and /v1/chains; without it they answer 404.
  Server(EmbeddingModel model, ServerOptions options, std::shared_ptr<const search::IndexDir> index = nullptr,
         std::optional<TextModel> llm = std::nullopt);
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
