// serve/JobQueue: jobs run one at a time in arrival order on one thread, results and exceptions
// reach their futures, the bound refuses at once, stop() finishes what was queued.
#include "rankemb/serve/job_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace sv = rankemb::serve;

TEST(JobQueue, RunsInOrderOneAtATime) {
  sv::JobQueue q(8);
  std::atomic<int> running{0}, overlap{0};
  std::string order;
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < 5; ++i) {
    auto f = q.submit([&, i] {
      if (++running > 1) ++overlap;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      order += std::to_string(i);
      --running;
      return "job " + std::to_string(i);
    });
    ASSERT_TRUE(f);
    results.push_back(std::move(*f));
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(results[i].get(), "job " + std::to_string(i));
  EXPECT_EQ(order, "01234");
  EXPECT_EQ(overlap.load(), 0);
}

TEST(JobQueue, ExceptionsReachTheFuture) {
  sv::JobQueue q(1);
  auto f = q.submit([]() -> std::string { throw std::invalid_argument("bad field"); });
  ASSERT_TRUE(f);
  EXPECT_THROW(f->get(), std::invalid_argument);
  EXPECT_EQ(q.submit([] { return std::string("next"); })->get(), "next");
}

TEST(JobQueue, BoundRefusesAtOnceAndStopFinishesTheQueue) {
  sv::JobQueue q(1);  // one running + one waiting
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  auto first = q.submit([gate] { gate.wait(); return std::string("1"); });
  ASSERT_TRUE(first);
  auto second = q.submit([] { return std::string("2"); });
  ASSERT_TRUE(second);
  EXPECT_EQ(q.depth(), 2u);
  EXPECT_FALSE(q.submit([] { return std::string("3"); })) << "a third job exceeds the bound";
  std::thread stopper([&] { q.stop(); });
  release.set_value();
  stopper.join();
  EXPECT_EQ(first->get(), "1");
  EXPECT_EQ(second->get(), "2") << "stop() finishes the queued job";
  EXPECT_FALSE(q.submit([] { return std::string("4"); })) << "stopped";
}
