// rankemb::serve ConnectionPool: the threads that serve accepted HTTP connections, behind a
// bounded hand-off. cpp-httplib's own pool queues every accepted connection without a bound (its
// enqueue cannot refuse), so a burst of clients beyond the thread count would pile up there, each
// holding a file descriptor. Here the accepting thread waits instead once `max_waiting`
// connections are queued (holding the one it accepted last): further clients stay in the kernel's
// listen backlog, which the kernel bounds (net.core.somaxconn), and are accepted as threads free up.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rankemb::serve {

class ConnectionPool {
 public:
  // `threads` >= 1 serve tasks; up to `max_waiting` tasks wait for one (0 = a task waits only for
  // a free thread). Throws Error(Usage) when the system cannot start the threads.
  ConnectionPool(std::size_t threads, std::size_t max_waiting);
  ~ConnectionPool();  // shutdown()
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Runs `task` on a pool thread. Blocks while the queue is full, so the caller (the accept loop)
  // stops accepting; after shutdown() the task runs on the caller's thread instead.
  void run(std::function<void()> task);
  // Tasks running / waiting for a thread.
  std::size_t busy() const;
  std::size_t waiting() const;
  // Finishes the queued tasks and joins the threads. A second call does nothing; calls must not
  // overlap (the server makes one, from its accept loop).
  void shutdown();

 private:
  void work();

  std::size_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable task_ready_, room_;
  std::deque<std::function<void()>> queue_;
  std::size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace rankemb::serve
