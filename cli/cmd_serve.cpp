// rankemb serve: an embedding server for a refined (or any) encoder, with the APIs search stacks
// already speak (OpenAI /v1/embeddings; text-embeddings-inference /embed, /rerank, /info,
// /health; Prometheus /metrics), with -i INDEX POST /search, and with --llm MODEL the stage-1
// decoder: OpenAI /v1/completions (plus guidance) and /v1/chains (a chain as `rankemb generate`
// writes it). SIGTERM or SIGINT drains in-flight requests and exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "cli.h"
#include "llm_service.h"
#include "model_service.h"
#include "rankemb/models/embed.h"
#include "rankemb/search/index.h"
#include "rankemb/serve/server.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

namespace {

struct ServeArgs {
  EncoderChoice encoder;
  LlmChoice llm;
  std::string index;
  serve::ServerOptions server;
  long long wait_us = 2000;
};

// Blocks SIGINT and SIGTERM in this thread and every thread it starts afterwards (the server's),
// so that only the watcher below receives them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int run_serve(ServeArgs a) {
  const sigset_t stop_signals = block_stop_signals();
  auto encoder = load_chosen_encoder(a.encoder);
  serve::EmbeddingModel model = embedding_model(*encoder, a.encoder);
  std::shared_ptr<const search::IndexDir> index;
  if (!a.index.empty()) {
    auto dir = std::make_shared<search::IndexDir>(search::read_index_dir(a.index));
    search::check_same_model(dir->info, model.embed({search::kProbeSentence}).at(0), a.encoder.model, model.dtype);
    index = std::move(dir);
  }
  a.server.batching.max_wait = std::chrono::microseconds(a.wait_us);
  // Each model worker computes on its share of --threads.
  model.worker_start = [](std::size_t worker, std::size_t workers) {
    const int threads = models::take_share_of_threads(static_cast<int>(worker), static_cast<int>(workers));
    if (workers > 1) log::info("model worker {} of {}: {} thread{}", worker + 1, workers, threads, threads == 1 ? "" : "s");
  };
  std::optional<serve::TextModel> llm;
  if (!a.llm.model.empty()) llm = load_text_model(a.llm);
  serve::Server server(std::move(model), a.server, index, std::move(llm));
  const int port = server.bind();
  std::thread watcher([&server, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log::info("signal {}: finishing the requests in flight, then exiting", sig);
    server.stop();
  });
  // The address on stderr even with -q: scripts that start the server on port 0 read it here.
  std::fprintf(stderr, "rankemb serve: listening on http://%s:%d\n", a.server.host.c_str(), port);
  std::fflush(stderr);
  server.run();
  if (watcher.joinable()) {
    pthread_kill(watcher.native_handle(), SIGTERM);  // run() ended on its own: release the watcher
    watcher.join();
  }
  return 0;
}

}  // namespace

void register_serve(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = root.add_subcommand("serve", "Serve an encoder over HTTP: OpenAI /v1/embeddings, TEI /embed /rerank /info /health, /metrics, /search; "
                                 "with --llm: /v1/completions, /v1/chains");
  add_encoder_options(cmd, a->encoder, true);
  cmd->add_option("-i,--index", a->index, "Index directory (rankemb index build) to answer POST /search from");
  cmd->add_option("--host", a->server.host, "Address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every interface)");
  cmd->add_option("--port", a->server.port, "Port (0 = any free port, printed at start)")->check(in_range(0, 65535));
  cmd->add_option("--api-key", a->server.api_key, "Require 'Authorization: Bearer KEY' on every route but /health (also $RANKEMB_API_KEY)")
      ->envname("RANKEMB_API_KEY");
  cmd->add_option("--max-body", a->server.max_body_bytes, "Largest request body in bytes (413 above)")->check(in_range(1024, 1 << 30));
  cmd->add_option("--max-inputs", a->server.limits.max_inputs, "Texts per request (413 above)")->check(in_range(1, 65536));
  cmd->add_option("--max-batch-tokens", a->server.batching.max_batch_tokens, "Tokens per model call across clients")->check(in_range(1, 1 << 22));
  cmd->add_option("--max-queue", a->server.batching.max_queue_texts, "Texts waiting for the model before requests get 429")->check(in_range(1, 1 << 22));
  cmd->add_option("--max-wait-us", a->wait_us, "How long a batch waits for more clients, in microseconds")->check(in_range(0, 1000000));
  cmd->add_option("--workers", a->server.batching.workers,
                  "Model calls run at once, each on its share of --threads. 1 (default): one batch at a time on every "
                  "thread, the lowest latency; 2 with --threads 2: two one-thread batches side by side, more throughput "
                  "under many concurrent clients (README \"Serving\"). Float32 gains only with one thread per worker "
                  "(OpenBLAS runs one multi-threaded product at a time)")
      ->check(in_range(1, static_cast<double>(serve::BatcherOptions::kMaxWorkers)));
  cmd->add_option("--http-threads", a->server.http_threads, "Connections served at once; as many more wait accepted, the rest in the kernel's listen backlog")->check(in_range(1, 1024));
  cmd->add_flag("--auto-truncate", a->server.auto_truncate, "Truncate over-long inputs in /v1/embeddings instead of answering 413");
  add_llm_options(cmd, a->llm);
  auto& llm = a->server.llm_limits;
  cmd->add_option("--max-prompts", llm.max_prompts, "Prompts per /v1/completions request (413 above)")->check(in_range(1, 256));
  cmd->add_option("--max-tokens", llm.max_tokens, "Largest max_tokens of a completion or a chain step (400 above)")->check(in_range(1, 1 << 16));
  cmd->add_option("--max-steps", llm.max_steps, "Steps per /v1/chains chain (400 above)")->check(in_range(1, 1024));
  cmd->add_option("--llm-queue", a->server.llm_queue, "Generation requests waiting behind the running one before requests get 429")
      ->check(in_range(0, 1024));
  cmd->callback([a, &rc] { rc = run_serve(*a); });
}

}  // namespace rankemb::cli
