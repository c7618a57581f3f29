// rankemb::serve Batcher: dynamic batching of concurrent embedding requests. HTTP threads submit
// their texts; a model worker takes the queued requests in arrival order, as many as fit in
// max_batch_tokens (a request larger than that goes alone), waiting at most max_wait for more
// after the first, and runs them through the model in one call (which sorts by length and pads
// per chunk). With several workers, each takes the next batch while the others compute: on a
// small machine two workers of one thread each keep both cores busy where one worker of two
// threads waits at every parallel region (README "Serving"). The queue is bounded in texts: a
// submit that would exceed it is refused at once (the server answers 429), never queued without
// bound. stop() finishes what was queued.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rankemb/util/types.h"

namespace rankemb::serve {

struct BatcherOptions {
  std::size_t max_batch_tokens = 8192;   // tokens (with specials) per model call
  std::size_t max_queue_texts = 4096;    // texts waiting; more is refused
  std::chrono::microseconds max_wait{2000};
  std::size_t workers = 1;               // model calls run at once (1-kMaxWorkers)
  static constexpr std::size_t kMaxWorkers = 64;
};

// What one model call did, for the metrics.
struct BatchStats {
  std::size_t requests = 0, texts = 0, tokens = 0;
  double seconds = 0;
};

class Batcher {
 public:
  using Rows = std::vector<std::vector<float>>;
  // `embed` is called from the worker threads, by as many at once as there are workers;
  // `on_batch` (optional) after each call; `worker_start` (optional) first thing in each worker
  // thread, with the worker's number and the number of workers (e.g. to set the thread's share of
  // the cores).
  using WorkerStart = std::function<void(std::size_t worker, std::size_t workers)>;
  Batcher(EmbedFn embed, BatcherOptions options, std::function<void(const BatchStats&)> on_batch = {},
          WorkerStart worker_start = {});
  ~Batcher();  // stop()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `texts` (their token counts in `tokens`); the future gets one row per text in order,
  // or the model's exception. std::nullopt when the queue has no room or the batcher stopped.
  std::optional<std::future<Rows>> submit(std::vector<std::string> texts, std::vector<std::size_t> tokens);
  // Texts waiting for the model.
  std::size_t queue_depth() const;
  // Model workers (BatcherOptions::workers within 1-kMaxWorkers).
  std::size_t workers() const { return options_.workers; }
  // Refuses new work, finishes the queued requests, joins the workers. Idempotent.
  void stop();

 private:
  struct Job {
    std::vector<std::string> texts;
    std::size_t tokens = 0;
    std::promise<Rows> result;
  };
  void run(std::size_t worker);
  void deliver(std::vector<Job>& batch, Rows rows, std::exception_ptr error);
  std::vector<Job> next_batch(std::unique_lock<std::mutex>& lock);
  std::vector<Job> take_jobs(std::size_t budget);

  EmbedFn embed_;
  BatcherOptions options_;
  std::function<void(const BatchStats&)> on_batch_;
  WorkerStart worker_start_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::size_t queued_texts_ = 0;
  std::size_t queued_tokens_ = 0;  // sum of queue_'s job tokens, kept so waiting never walks the queue
  bool stopping_ = false;
  bool collecting_ = false;  // a worker is waiting for a batch to fill
  std::size_t busy_ = 0;     // workers computing a batch
  bool handed_off_ = false;  // the last collector left queued jobs for the idle workers
  std::vector<std::thread> workers_;
};

}  // namespace rankemb::serve
