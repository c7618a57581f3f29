#include "rankemb/serve/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rankemb/serve/connection_pool.h"
#include "rankemb/serve/metrics.h"
#include "rankemb/util/error.h"
#include "rankemb/util/version.h"

namespace rankemb::serve {

using nlohmann::json;
using Rows = Batcher::Rows;

namespace {

constexpr const char* kJson = "application/json";
thread_local std::chrono::steady_clock::time_point t_request_start;

Dialect dialect_of(const std::string& path) { return path.rfind("/v1/", 0) == 0 ? Dialect::OpenAi : Dialect::Tei; }

// The metrics label of a path: known routes by name, anything else as "other" (bounded labels).
std::string route_label(const std::string& path) {
  static const char* const kRoutes[] = {"/v1/embeddings", "/embed",   "/rerank",         "/search",   "/health",
                                        "/info",           "/metrics", "/v1/completions", "/v1/chains"};
  for (const char* r : kRoutes)
    if (path == r) return r;
  return "other";
}

// Compares without an early exit, so the time taken does not reveal how much of a key matched.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(1, b.size())]);
  return diff == 0;
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0f);
}

std::int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The HTTP threads a server runs (ServerOptions::http_threads, within 1-1024).
std::size_t http_threads(const ServerOptions& o) { return std::clamp<std::size_t>(o.http_threads, 1, 1024); }

// httplib's task queue over the server's ConnectionPool (httplib makes one per accept loop and
// deletes it when the loop ends; the pool outlives it).
class PoolTaskQueue final : public httplib::TaskQueue {
 public:
  explicit PoolTaskQueue(ConnectionPool& pool) : pool_(pool) {}
  void enqueue(std::function<void()> fn) override { pool_.run(std::move(fn)); }
  void shutdown() override { pool_.shutdown(); }

 private:
  ConnectionPool& pool_;
};

}  // namespace

struct Server::Impl {
  EmbeddingModel model;
  ServerOptions opt;
  std::shared_ptr<const search::IndexDir> index;
  std::optional<TextModel> llm;
  Metrics metrics;
  Batcher batcher;
  JobQueue llm_jobs;
  const std::int64_t started = unix_time();
  std::atomic<std::uint64_t> completions_served{0};
  httplib::Server http;
  // At most http_threads connections served and as many again accepted and waiting; beyond that
  // clients wait in the kernel's listen backlog (connection_pool.h). Declared after `http` so
  // that its threads, which run httplib's connection handlers, are joined before `http` goes.
  ConnectionPool connections;
  std::atomic<bool> draining{false}, run_started{false}, run_finished{false};
  int listen_socket = -1;  // the last socket httplib made for bind()

  Impl(EmbeddingModel m, ServerOptions o, std::shared_ptr<const search::IndexDir> idx, std::optional<TextModel> text_model)
      : model(std::move(m)), opt(std::move(o)), index(std::move(idx)), llm(std::move(text_model)),
        batcher(model.embed, opt.batching, [this](const BatchStats& s) { metrics.batch(s.texts, s.tokens, s.seconds); },
                model.worker_start),
        llm_jobs(opt.llm_queue),
        connections(http_threads(opt), http_threads(opt)) {
    routes();
  }

  // Each text's tokens (capped at the model's limit); an over-long text is 413 unless truncating.
  std::vector<std::size_t> token_counts(const std::vector<std::string>& texts, bool truncate, const char* field) const {
    std::vector<std::size_t> out;
    out.reserve(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const std::size_t n = model.count_tokens(texts[i]);
      if (n > model.max_input_tokens && !truncate)
        throw ApiError(413, fmt::format("{}[{}] has {} tokens, more than the model's {}; send \"truncate\": true to cut it", field, i, n,
                                        model.max_input_tokens), field);
      out.push_back(std::min(n, model.max_input_tokens));
    }
    return out;
  }

  Rows embed(std::vector<std::string> texts, std::vector<std::size_t> tokens) {
    if (draining) throw ApiError(503, "the server is shutting down");
    auto result = batcher.submit(std::move(texts), std::move(tokens));
    if (!result) throw ApiError(429, fmt::format("the queue is full ({} texts waiting); retry shortly", batcher.queue_depth()));
    return result->get();
  }

  std::string embeddings(const std::string& body) {
    EmbeddingsRequest r = parse_embeddings_request(body, opt.limits);
    if (r.dimensions && *r.dimensions > model.dim)
      throw ApiError(400, fmt::format("dimensions must be at most the model's {}, got {}", model.dim, *r.dimensions), "dimensions");
    auto tokens = token_counts(r.inputs, opt.auto_truncate, "input");
    const std::size_t total = std::accumulate(tokens.begin(), tokens.end(), std::size_t{0});
    Rows rows = embed(std::move(r.inputs), std::move(tokens));
    if (r.dimensions) {
      // A shorter embedding as OpenAI's text-embedding-3 gives it: the leading dimensions, renormalized.
      for (auto& row : rows) row.resize(*r.dimensions), search::l2_normalize(row);
    }
    return embeddings_response(rows, r.base64, r.model.empty() ? model.id : r.model, total);
  }

  std::string embed_tei(const std::string& body) {
    EmbedRequest r = parse_embed_request(body, opt.limits);
    auto tokens = token_counts(r.inputs, r.truncate || opt.auto_truncate, "inputs");
    Rows rows = embed(std::move(r.inputs), std::move(tokens));
    if (r.normalize)
      for (auto& row : rows) search::l2_normalize(row);
    return embed_response(rows);
  }

  // A bi-encoder's rerank: cosine of each text's embedding to the query's.
  std::string rerank(const std::string& body) {
    RerankRequest r = parse_rerank_request(body, opt.limits);
    std::vector<std::string> texts;
    texts.reserve(r.texts.size() + 1);
    texts.push_back(r.query);
    texts.insert(texts.end(), r.texts.begin(), r.texts.end());
    auto tokens = token_counts(texts, r.truncate || opt.auto_truncate, "texts");
    Rows rows = embed(std::move(texts), std::move(tokens));
    for (auto& row : rows) search::l2_normalize(row);
    std::vector<float> scores;
    for (std::size_t i = 1; i < rows.size(); ++i) scores.push_back(dot(rows[0], rows[i]));
    return rerank_response(scores, r.return_text ? &r.texts : nullptr);
  }

  std::string search_index(const std::string& body) {
    if (!index) throw ApiError(404, "no index is loaded (start the server with -i INDEX)");
    SearchRequest r = parse_search_request(body, opt.limits);
    auto tokens = token_counts(r.queries, true, "query");
    Rows rows = embed(r.queries, std::move(tokens));
    const auto hits = index->index.search(std::move(rows), r.k);
    json results = json::array();
    for (std::size_t q = 0; q < hits.size(); ++q) {
      json list = json::array();
      for (const auto& h : hits[q]) {
        const auto p = static_cast<std::size_t>(h.position);
        list.push_back({{"id", index->ids[p]}, {"score", h.score}, {"text", index->texts[p]}});
      }
      results.push_back({{"query", r.queries[q]}, {"hits", std::move(list)}});
    }
    return json{{"results", std::move(results)}}.dump();
  }

  const TextModel& require_llm() const {
    if (!llm) throw ApiError(404, "no LLM is loaded (start the server with --llm MODEL)");
    return *llm;
  }

  // Runs `job` on the LLM worker, behind the requests already queued.
  std::string generate(JobQueue::Job job) {
    if (draining) throw ApiError(503, "the server is shutting down");
    auto result = llm_jobs.submit(std::move(job));
    if (!result)
      throw ApiError(429, fmt::format("the LLM is busy ({} generation requests running or queued); retry shortly",
                                      llm_jobs.depth()));
    return result->get();
  }

  // Every sequence must fit the model's context: its prompt plus max_tokens. Runs on the LLM
  // worker, the one thread that may use the model's tokenizer and chat template.
  void check_context(const CompletionRequest& r) const {
    const std::size_t context = llm->context_tokens;
    if (r.max_tokens >= context)
      throw ApiError(400,
                     fmt::format("max_tokens must be less than the model's context of {} tokens, got {}", context,
                                 r.max_tokens),
                     "max_tokens");
    const auto fits = [&](const std::string& text, const std::string& field) {
      const std::size_t n = llm->count_prompt_tokens(text, r.chat);
      if (n + r.max_tokens > context)
        throw ApiError(413,
                       fmt::format("{} has {} tokens; with max_tokens {} that is more than the model's context of {} tokens",
                                   field, n, r.max_tokens, context),
                       field.substr(0, field.find('[')));
    };
    for (std::size_t i = 0; i < r.prompts.size(); ++i) fits(r.prompts[i], fmt::format("prompt[{}]", i));
    if (!r.negative_prompt.empty()) fits(r.negative_prompt, "negative_prompt");
  }

  std::string completions(const std::string& body) {
    const TextModel& m = require_llm();
    CompletionRequest r = parse_completion_request(body, opt.llm_limits);
    if (r.chat && !m.has_chat_template)
      throw ApiError(400, "chat: the model has no chat template; send raw prompts instead", "chat");
    return generate([this, r = std::move(r)] {
      check_context(r);
      const std::vector<CompletionChoice> choices = llm->complete(r);
      std::size_t tokens = 0;
      for (const auto& c : choices) tokens += c.completion_tokens;
      metrics.completion_tokens(tokens);
      const std::string id = fmt::format("cmpl-{}-{}", started, ++completions_served);
      return completions_response(choices, id, unix_time(), r.model.empty() ? llm->id : r.model);
    });
  }

  std::string chains(const std::string& body) {
    require_llm();
    ChainRequest r = parse_chain_request(body, opt.llm_limits);
    return generate([this, r = std::move(r)] { return llm->chain(r); });
  }

  std::string info() const {
    return json{{"model_id", model.id},
                {"model_sha", nullptr},
                {"model_dtype", model.dtype},
                {"model_type", {{"embedding", {{"pooling", model.pooling}}}}},
                {"dimensions", model.dim},
                {"max_concurrent_requests", opt.http_threads},
                {"max_input_length", model.max_input_tokens},
                {"max_batch_tokens", opt.batching.max_batch_tokens},
                {"max_batch_requests", nullptr},
                {"max_client_batch_size", opt.limits.max_inputs},
                {"auto_truncate", opt.auto_truncate},
                {"tokenization_workers", opt.http_threads},
                {"model_workers", batcher.workers()},
                {"version", version()},
                {"index", index ? json{{"count", index->index.size()}, {"kind", index->info.settings.kind}} : json(nullptr)},
                {"llm", llm ? json{{"model_id", llm->id},
                                   {"chain_preset", llm->preset},
                                   {"context_tokens", llm->context_tokens},
                                   {"chat_template", llm->has_chat_template},
                                   {"max_prompts", opt.llm_limits.max_prompts},
                                   {"max_tokens", opt.llm_limits.max_tokens},
                                   {"max_steps", opt.llm_limits.max_steps},
                                   {"max_queue", opt.llm_queue}}
                            : json(nullptr)}}
        .dump();
  }

  void post(const char* path, std::string (Impl::*handler)(const std::string&)) {
    const Dialect dialect = dialect_of(path);
    http.Post(path, [this, handler, dialect](const httplib::Request& req, httplib::Response& res) {
      try {
        res.set_content((this->*handler)(req.body), kJson);
      } catch (const ApiError& e) {
        fail_with(res, dialect, e.status, e.what(), e.field);
      } catch (const Error& e) {
        fail_with(res, dialect, e.code() == ErrorCode::Input || e.code() == ErrorCode::Usage ? 400 : 500, e.message(), "");
      } catch (const std::exception& e) {
        fail_with(res, dialect, 500, e.what(), "");
      }
    });
  }

  static void fail_with(httplib::Response& res, Dialect dialect, int status, std::string_view message, std::string_view field) {
    res.status = status;
    if (status == 429 || status == 503) res.set_header("Retry-After", "1");
    res.set_content(error_body(dialect, status, message, field), kJson);
  }

  void routes() {
    post("/v1/embeddings", &Impl::embeddings);
    post("/embed", &Impl::embed_tei);
    post("/rerank", &Impl::rerank);
    post("/search", &Impl::search_index);
    post("/v1/completions", &Impl::completions);
    post("/v1/chains", &Impl::chains);
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      res.status = draining ? 503 : 200;
      res.set_content(draining ? "shutting down" : "", "text/plain");
    });
    http.Get("/info", [this](const httplib::Request&, httplib::Response& res) { res.set_content(info(), kJson); });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      const Metrics::Gauges gauges{.queue_depth = batcher.queue_depth(), .llm_queue_depth = llm_jobs.depth(),
                                   .connections_busy = connections.busy(), .connections_waiting = connections.waiting()};
      res.set_content(metrics.render(gauges), "text/plain; version=0.0.4");
    });
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_request_start = std::chrono::steady_clock::now();
      if (opt.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      const std::string given = req.get_header_value("Authorization");
      if (same_secret(given, "Bearer " + opt.api_key)) return httplib::Server::HandlerResponse::Unhandled;
      fail_with(res, dialect_of(req.path), 401, "missing or wrong API key (send Authorization: Bearer KEY)", "");
      return httplib::Server::HandlerResponse::Handled;
    });
    // Statuses httplib sets itself (404, 405, 413 for a body over the limit) get a JSON body too.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const std::string message = res.status == 413   ? "the request body is larger than the server allows"
                                  : res.status == 404 ? fmt::format("no route {} {}", req.method, req.path)
                                                      : fmt::format("HTTP {}", res.status);
      res.set_content(error_body(dialect_of(req.path), res.status, message), kJson);
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request_start).count();
      metrics.request(route_label(req.path), res.status, seconds);
    });
    // Our own socket options instead of httplib's default, which sets SO_REUSEPORT: with it a
    // second server on a taken port binds silently and the kernel splits the traffic between the
    // two. SO_REUSEADDR alone lets a restart reuse the port of a server that just exited.
    http.set_socket_options([this](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listen_socket = sock;
    });
    // httplib writes a response's headers and body separately; with Nagle's algorithm the body
    // then waits for the client's delayed ACK of the headers (40 ms on Linux) on every keep-alive
    // request. Measured: a one-sentence request took 92 ms with Nagle, see bench/serve_bench.py.
    http.set_tcp_nodelay(true);
    http.set_payload_max_length(opt.max_body_bytes);
    http.set_read_timeout(10, 0);
    http.set_write_timeout(10, 0);
    http.set_keep_alive_max_count(1000);
    http.new_task_queue = [this] { return new PoolTaskQueue(connections); };
  }
};

Server::Server(EmbeddingModel model, ServerOptions options, std::shared_ptr<const search::IndexDir> index,
               std::optional<TextModel> llm)
    : impl_(std::make_unique<Impl>(std::move(model), std::move(options), std::move(index), std::move(llm))) {}

Server::~Server() {
  stop();
  impl_->batcher.stop();
  impl_->llm_jobs.stop();
}

int Server::bind() {
  auto& o = impl_->opt;
  const bool ok = o.port == 0 ? (o.port = impl_->http.bind_to_any_port(o.host)) > 0 : impl_->http.bind_to_port(o.host, o.port);
  if (!ok) fail(ErrorCode::Usage, "cannot listen on {}:{} (the port is taken or the host is not an address of this machine)", o.host, o.port);
  // Debian's httplib listens with a backlog of 5: a burst of clients connecting at once (64 in
  // the tests) overflows it and their handshakes are dropped. Calling listen() again on the
  // listening socket raises the backlog (Linux and the BSDs allow it).
  ::listen(impl_->listen_socket, SOMAXCONN);
  return o.port;
}

// stop() and run() may race (a signal right at start-up, a test that ends at once): httplib's
// stop() does nothing before its accept loop runs, and the loop would then run forever. So run()
// gives up when stop() came first, and stop() waits for the loop to be up before stopping it.
// Both flags are sequentially consistent: of "draining then run_started" and "run_started then
// draining", at least one side sees the other's write.
void Server::run() {
  impl_->run_started = true;
  if (!impl_->draining) impl_->http.listen_after_bind();
  impl_->run_finished = true;
  impl_->batcher.stop();
  impl_->llm_jobs.stop();
}

void Server::stop() {
  impl_->draining = true;
  if (!impl_->run_started) return;
  while (!impl_->http.is_running() && !impl_->run_finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->http.stop();
}

}  // namespace rankemb::serve
