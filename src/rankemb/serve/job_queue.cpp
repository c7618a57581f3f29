#include "rankemb/serve/job_queue.h"

namespace rankemb::serve {

JobQueue::JobQueue(std::size_t max_waiting) : max_waiting_(max_waiting), worker_([this] { run(); }) {}

JobQueue::~JobQueue() { stop(); }

std::optional<std::future<std::string>> JobQueue::submit(Job job) {
  std::packaged_task<std::string()> task(std::move(job));
  std::future<std::string> result = task.get_future();
  {
    std::lock_guard lock(mutex_);
    // Room for one running job plus max_waiting_ behind it (the worker pops a job and marks it
    // running under the same lock, so the sum never misses one).
    if (stopping_ || queue_.size() + (running_job_ ? 1 : 0) > max_waiting_) return std::nullopt;
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
  return result;
}

std::size_t JobQueue::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + (running_job_ ? 1 : 0);
}

void JobQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void JobQueue::run() {
  for (;;) {
    std::packaged_task<std::string()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      running_job_ = true;
    }
    task();  // a job's exception lands in its future
    std::lock_guard lock(mutex_);
    running_job_ = false;
  }
}

}  // namespace rankemb::serve
