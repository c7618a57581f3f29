// serve/Batcher with several model workers: batches run side by side (the point of
// --workers), a burst is shared among the idle workers instead of going to one, every request
// gets its own rows, and one worker keeps the single-worker behaviour (one batch per burst).
#include "rankemb/serve/batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sv = rankemb::serve;
using namespace std::chrono_literals;

namespace {

// A model whose calls record how many ran at once and how large each was. Each call waits (up
// to a bound) until `meet` calls are in flight together, so a test can tell whether the workers
// overlapped: with no overlap every call waits out the bound.
struct MeetingModel {
  std::size_t meet = 1;
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t in_flight = 0, most_in_flight = 0;
  bool met = false;  // `meet` calls were in flight together once
  std::vector<std::size_t> sizes;
  std::vector<std::chrono::steady_clock::time_point> starts;
  std::atomic<std::size_t> started_threads{0};

  rankemb::EmbedFn fn() {
    return [this](const std::vector<std::string>& texts) {
      {
        std::unique_lock lock(mutex);
        sizes.push_back(texts.size());
        starts.push_back(std::chrono::steady_clock::now());
        most_in_flight = std::max(most_in_flight, ++in_flight);
        met = met || in_flight >= meet;
        cv.notify_all();
        cv.wait_for(lock, 2s, [&] { return met; });
      }
      std::vector<std::vector<float>> rows;
      for (const auto& t : texts) rows.push_back({static_cast<float>(t.size()), static_cast<float>(t.front())});
      std::lock_guard lock(mutex);
      --in_flight;
      return rows;
    };
  }
};

// Submits `n` one-text requests at once ("t" + i, one token each) and checks every answer.
void submit_burst(sv::Batcher& b, std::size_t n) {
  std::vector<std::future<sv::Batcher::Rows>> results;
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < n; ++i) {
    texts.push_back("t" + std::string(i + 1, char('a' + i % 26)));
    auto f = b.submit({texts.back()}, {1});
    ASSERT_TRUE(f.has_value());
    results.push_back(std::move(*f));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto rows = results[i].get();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0], (std::vector<float>{static_cast<float>(texts[i].size()), float('t')})) << "request " << i;
  }
}

TEST(Batcher, TwoWorkersShareABurstAndComputeSideBySide) {
  MeetingModel model;
  model.meet = 2;
  sv::BatcherOptions o;
  o.workers = 2;
  o.max_wait = 300ms;  // the whole burst is queued before the first batch is cut
  std::atomic<std::size_t> worker_numbers{0};
  sv::Batcher b(model.fn(), o, {}, [&](std::size_t worker, std::size_t workers) {
    EXPECT_EQ(workers, 2u);
    worker_numbers |= std::size_t{1} << worker;
    ++model.started_threads;
  });
  const auto start = std::chrono::steady_clock::now();
  submit_burst(b, 8);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  b.stop();
  EXPECT_EQ(model.started_threads.load(), 2u);
  EXPECT_EQ(worker_numbers.load(), 3u);  // workers 0 and 1
  EXPECT_EQ(model.most_in_flight, 2u);
  // Halves: 4 and 4 (one worker taking all 8 would leave the other nothing to do).
  EXPECT_EQ(model.sizes, (std::vector<std::size_t>{4, 4}));
  EXPECT_LT(seconds, 1.5) << "the two calls waited for each other: they did not overlap";
  // The second worker took the half left for it at once, without a second max_wait.
  ASSERT_EQ(model.starts.size(), 2u);
  EXPECT_LT(model.starts[1] - model.starts[0], 150ms);
}

TEST(Batcher, OneWorkerTakesTheWholeBurst) {
  MeetingModel model;
  sv::BatcherOptions o;
  o.max_wait = 100ms;
  sv::Batcher b(model.fn(), o);
  submit_burst(b, 8);
  b.stop();
  EXPECT_EQ(model.most_in_flight, 1u);
  EXPECT_EQ(model.sizes, (std::vector<std::size_t>{8}));
}

TEST(Batcher, ManyWorkersManyRequestsNoneLostOrMixed) {
  MeetingModel model;
  sv::BatcherOptions o;
  o.workers = 3;
  o.max_wait = 200us;
  sv::Batcher b(model.fn(), o);
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) clients.emplace_back([&] { submit_burst(b, 20); });
  for (auto& t : clients) t.join();
  b.stop();
  std::size_t texts = 0;
  for (auto s : model.sizes) texts += s;
  EXPECT_EQ(texts, 16u * 20u);
  EXPECT_LE(model.most_in_flight, 3u);
}

TEST(Batcher, StopFinishesWhatWasQueued) {
  MeetingModel model;
  sv::BatcherOptions o;
  o.workers = 2;
  o.max_wait = 50ms;
  auto b = std::make_unique<sv::Batcher>(model.fn(), o);
  std::vector<std::future<sv::Batcher::Rows>> results;
  for (int i = 0; i < 5; ++i) results.push_back(*b->submit({"x" + std::to_string(i)}, {1}));
  b->stop();
  for (auto& r : results) EXPECT_EQ(r.get().size(), 1u);
  EXPECT_FALSE(b->submit({"late"}, {1}).has_value());
}

}  // namespace
