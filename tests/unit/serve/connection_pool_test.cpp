// serve/ConnectionPool: every task runs once, on the pool's threads; run() blocks while the pool is
// full (threads busy + max_waiting queued) and resumes as a thread frees up; shutdown finishes the
// queue; after it run() serves on the caller's thread.
#include "rankemb/serve/connection_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace sv = rankemb::serve;
using namespace std::chrono_literals;

namespace {

// Tasks that wait until opened. Opens on destruction too, so a failed assertion does not leave
// pool threads waiting forever.
struct Gate {
  std::promise<void> open_promise;
  std::shared_future<void> opened = open_promise.get_future().share();
  std::once_flag once;
  void open() { std::call_once(once, [&] { open_promise.set_value(); }); }
  ~Gate() { open(); }
};

// Waits up to 5 s for `done`.
template <class F>
bool eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST(ConnectionPool, RunsEveryTaskOnceOnItsThreads) {
  std::atomic<int> runs{0};
  std::mutex m;
  std::set<std::thread::id> threads;
  {
    sv::ConnectionPool pool(3, 2);
    for (int i = 0; i < 200; ++i)
      pool.run([&] {
        ++runs;
        std::lock_guard lock(m);
        threads.insert(std::this_thread::get_id());
      });
    pool.shutdown();  // finishes the queue
    EXPECT_EQ(runs, 200);
  }
  EXPECT_LE(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(ConnectionPool, RunBlocksWhileFullAndResumesWhenAThreadFrees) {
  sv::ConnectionPool pool(2, 1);
  Gate first, rest;  // after the pool: opened (destroyed) before the pool joins its threads
  pool.run([&] { first.opened.wait(); });
  pool.run([&] { rest.opened.wait(); });
  ASSERT_TRUE(eventually([&] { return pool.busy() == 2; }));
  pool.run([&] { rest.opened.wait(); });  // waits for a thread: the one place in the queue
  EXPECT_EQ(pool.waiting(), 1u);

  std::atomic<bool> returned{false};
  std::thread accept([&] {
    pool.run([] {});  // full: 2 busy + 1 waiting
    returned = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(returned) << "run() returned although the pool was full";
  first.open();  // one thread frees, takes the queued task, and makes room
  EXPECT_TRUE(eventually([&] { return returned.load(); }));
  accept.join();
  rest.open();
  pool.shutdown();
  EXPECT_EQ(pool.busy(), 0u);
  EXPECT_EQ(pool.waiting(), 0u);
}

TEST(ConnectionPool, AfterShutdownTasksRunOnTheCaller) {
  sv::ConnectionPool pool(1, 0);
  pool.shutdown();
  pool.shutdown();  // idempotent
  std::thread::id ran_on;
  pool.run([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}
