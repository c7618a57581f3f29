#include "rankemb/serve/batcher.h"

#include <numeric>
#include <stdexcept>

namespace rankemb::serve {

Batcher::Batcher(EmbedFn embed, BatcherOptions options, std::function<void(const BatchStats&)> on_batch)
    : embed_(std::move(embed)), options_(options), on_batch_(std::move(on_batch)), worker_([this] { run(); }) {}

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
  wake_.notify_one();
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
  if (worker_.joinable()) worker_.join();
}

// The jobs of the next model call; empty when stopping with nothing queued. Called with the lock.
std::vector<Batcher::Job> Batcher::next_batch(std::unique_lock<std::mutex>& lock) {
  wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return {};
  // Give concurrent clients a moment to join the batch, unless it is already full.
  const auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
  while (!stopping_ && queued_tokens_ < options_.max_batch_tokens &&
         wake_.wait_until(lock, deadline) != std::cv_status::timeout) {
  }
  std::vector<Job> batch;
  std::size_t tokens = 0;
  while (!queue_.empty() && (batch.empty() || tokens + queue_.front().tokens <= options_.max_batch_tokens)) {
    tokens += queue_.front().tokens;
    queued_texts_ -= queue_.front().texts.size();
    queued_tokens_ -= queue_.front().tokens;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void Batcher::run() {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock lock(mutex_);
      batch = next_batch(lock);
    }
    if (batch.empty()) return;
    BatchStats stats;
    std::vector<std::string> texts;
    for (auto& j : batch) {
      stats.tokens += j.tokens;
      texts.insert(texts.end(), std::make_move_iterator(j.texts.begin()), std::make_move_iterator(j.texts.end()));
    }
    stats.requests = batch.size();
    stats.texts = texts.size();
    const auto start = std::chrono::steady_clock::now();
    try {
      Rows rows = embed_(texts);
      if (rows.size() != texts.size()) throw std::runtime_error("the model returned a wrong number of embeddings");
      std::size_t at = 0;
      for (auto& j : batch) {
        Rows mine(std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(at)),
                  std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(at + j.texts.size())));
        at += j.texts.size();
        j.result.set_value(std::move(mine));
      }
    } catch (...) {
      for (auto& j : batch) j.result.set_exception(std::current_exception());
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (on_batch_) on_batch_(stats);
  }
}

}  // namespace rankemb::serve
