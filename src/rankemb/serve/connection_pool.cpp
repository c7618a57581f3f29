#include "rankemb/serve/connection_pool.h"

#include <algorithm>
#include <system_error>

#include "rankemb/util/error.h"

namespace rankemb::serve {

ConnectionPool::ConnectionPool(std::size_t threads, std::size_t max_waiting) : max_waiting_(max_waiting) {
  threads = std::max<std::size_t>(threads, 1);
  threads_.reserve(threads);
  try {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  } catch (const std::system_error& e) {
    shutdown();  // join the threads already started before the error leaves the constructor
    fail(ErrorCode::Usage, "cannot start {} HTTP threads (started {}): {}", threads, threads_.size(), e.what());
  }
}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::run(std::function<void()> task) {
  {
    std::unique_lock lock(mutex_);
    // A task that finds a thread idle does not count against max_waiting_: it is picked up at once.
    const auto has_room = [&] { return stopping_ || queue_.size() + busy_ < threads_.size() + max_waiting_; };
    room_.wait(lock, has_room);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      task_ready_.notify_one();
      return;
    }
  }
  task();  // shut down: nobody else would run it
}

std::size_t ConnectionPool::busy() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

std::size_t ConnectionPool::waiting() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void ConnectionPool::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  task_ready_.notify_all();
  room_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void ConnectionPool::work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      task_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    task();
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    room_.notify_one();
  }
}

}  // namespace rankemb::serve
