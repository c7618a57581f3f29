#include "rankemb/serve/batcher.h"

#include <algorithm>
#include <exception>
#include <numeric>
#include <stdexcept>

namespace rankemb::serve {

Batcher::Batcher(EmbedFn embed, BatcherOptions options, std::function<void(const BatchStats&)> on_batch,
                 WorkerStart worker_start)
    : embed_(std::move(embed)), options_(options), on_batch_(std::move(on_batch)), worker_start_(std::move(worker_start)) {
  options_.workers = std::clamp<std::size_t>(options_.workers, 1, BatcherOptions::kMaxWorkers);
  workers_.reserve(options_.workers);
  try {
    for (std::size_t w = 0; w < options_.workers; ++w) workers_.emplace_back([this, w] { run(w); });
  } catch (...) {
    stop();  // join the workers that started before throwing (a joinable thread must not be destroyed)
    throw;
  }
}

Batcher::~Batcher() { stop(); }

std::optional<std::future<Batcher::Rows>> Batcher::submit(std::vector<std::string> texts, std::vector<std::size_t> tokens) {
  Job job;
  job.tokens = std::accumulate(tokens.begin(), tokens.end(), std::size_t{0});
  job.texts = std::move(texts);
  std::future<Rows> result = job.result.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queued_texts_ + job.texts.size() > options_.max_queue_texts) return std::nullopt;
    queued_texts_ += job.texts.size();
    queued_tokens_ += job.tokens;
    queue_.push_back(std::move(job));
  }
  // All: the worker collecting a batch checks whether it is full, an idle one whether to start one.
  wake_.notify_all();
  return result;
}

std::size_t Batcher::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queued_texts_;
}

void Batcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

// The jobs of the next model call; empty when stopping with nothing queued. Called with the lock.
// One worker at a time collects (waits for more clients): two idle workers would otherwise split
// one burst of requests into two small batches.
std::vector<Batcher::Job> Batcher::next_batch(std::unique_lock<std::mutex>& lock) {
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || (!queue_.empty() && !collecting_); });
    if (queue_.empty()) return {};
    // Give concurrent clients a moment to join the batch, unless it is already full.
    collecting_ = true;
    // Jobs another worker left for this one were queued while it waited already: no second wait.
    const auto deadline = std::chrono::steady_clock::now() + (handed_off_ ? std::chrono::microseconds(0) : options_.max_wait);
    handed_off_ = false;
    while (!stopping_ && queued_tokens_ < options_.max_batch_tokens &&
           wake_.wait_until(lock, deadline) != std::cv_status::timeout) {
    }
    collecting_ = false;
    // An equal share for this worker and each idle one, so that they compute side by side: with
    // 64 clients waiting and two idle workers, one batch of 64 would leave the other worker idle
    // until every client has its answer and sent again.
    // (One worker: the budget is everything queued, up to max_batch_tokens.)
    const std::size_t sharing = options_.workers - busy_;
    std::vector<Job> batch = take_jobs(std::min(options_.max_batch_tokens, (queued_tokens_ + sharing - 1) / sharing));
    // What is left (or comes next) is another worker's to collect.
    handed_off_ = sharing > 1 && !queue_.empty();
    wake_.notify_all();
    if (!batch.empty()) {
      ++busy_;
      return batch;
    }
    // Only while stopping can two workers collect at once, and the other took everything.
  }
}

// Queued jobs from the front while their tokens fit in `budget` (at least one job). Called with the lock.
std::vector<Batcher::Job> Batcher::take_jobs(std::size_t budget) {
  std::vector<Job> batch;
  std::size_t tokens = 0;
  while (!queue_.empty() && (batch.empty() || tokens + queue_.front().tokens <= budget)) {
    tokens += queue_.front().tokens;
    queued_texts_ -= queue_.front().texts.size();
    queued_tokens_ -= queue_.front().tokens;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void Batcher::run(std::size_t worker) {
  if (worker_start_) worker_start_(worker, options_.workers);
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock lock(mutex_);
      batch = next_batch(lock);
    }
    if (batch.empty()) return;
    BatchStats stats;
    stats.requests = batch.size();
    const auto start = std::chrono::steady_clock::now();
    Rows rows;
    std::exception_ptr error;
    try {
      std::vector<std::string> texts;
      for (auto& j : batch) {
        stats.tokens += j.tokens;
        texts.insert(texts.end(), std::make_move_iterator(j.texts.begin()), std::make_move_iterator(j.texts.end()));
      }
      stats.texts = texts.size();
      rows = embed_(texts);
      if (rows.size() != texts.size()) throw std::runtime_error("the model returned a wrong number of embeddings");
    } catch (...) {
      error = std::current_exception();
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      // Idle again before the answers go out: the clients' next requests find it counted as such.
      std::lock_guard lock(mutex_);
      --busy_;
    }
    deliver(batch, std::move(rows), error);
    if (on_batch_) on_batch_(stats);
  }
}

// Each job its rows, in order, or the error; nothing escapes the worker thread.
void Batcher::deliver(std::vector<Job>& batch, Rows rows, std::exception_ptr error) {
  std::size_t done = 0, at = 0;
  try {
    for (; !error && done < batch.size(); ++done) {
      const std::size_t n = batch[done].texts.size();
      Rows mine(std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(at)),
                std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(at + n)));
      at += n;
      batch[done].result.set_value(std::move(mine));
    }
  } catch (...) {
    error = std::current_exception();  // e.g. out of memory copying a job's rows
  }
  for (; done < batch.size(); ++done) batch[done].result.set_exception(error);
}

}  // namespace rankemb::serve
