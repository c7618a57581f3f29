// rankemb::serve JobQueue: one worker thread that runs jobs one at a time, in arrival order,
// behind a bounded queue. The server's LLM routes go through it: a decoder is not thread-safe and
// owns every slot of its model while it runs, and a request may run for seconds, so the queue
// bound (not the HTTP thread pool) decides how much work may wait; a submit beyond it is refused
// at once (the server answers 429). stop() finishes what was queued.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace rankemb::serve {

class JobQueue {
 public:
  using Job = std::function<std::string()>;
  // `max_waiting`: jobs queued behind the one running; 0 = none may wait.
  explicit JobQueue(std::size_t max_waiting);
  ~JobQueue();  // stop()
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Queues `job`; the future gets its result or its exception. std::nullopt when the queue is full
  // or stopped.
  std::optional<std::future<std::string>> submit(Job job);
  // Jobs waiting or running.
  std::size_t depth() const;
  // Refuses new jobs, finishes the queued ones, joins the worker. Idempotent.
  void stop();

 private:
  void run();

  std::size_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<std::string()>> queue_;
  bool running_job_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace rankemb::serve
