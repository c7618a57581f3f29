// Test helpers for the generate area: a deterministic fake SentenceGenerator that answers in a
// scrambled order after varying numbers of polls (as a continuous-batching LLM does), can crash
// after N polls, and logs every request; plus temp-dir and error-catching helpers.
#pragma once

#include <gtest/gtest.h>

#include "common/temp_dir.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "rankemb/generate/sentence_generator.h"
#include "rankemb/util/error.h"

namespace rankemb::generate::test {

// The default answer: a pure function of the request (current text, chain and step), as the
// interface demands. It embeds a short digest of `current` so the tests can see what was fed.
inline std::string default_answer(const StepRequest& r) {
  return fmt::format("c{} s{} <{}>", r.chain_id, r.step, r.current.size() > 12 ? r.current.substr(0, 12) : r.current);
}

class FakeGenerator final : public SentenceGenerator {
 public:
  struct Options {
    std::size_t capacity = 3;
    unsigned scramble = 1;            // seeds latencies and result order
    int max_latency = 3;              // a request finishes after 1..max_latency polls
    long throw_after_polls = -1;      // poll number (1-based) that throws; -1 = never
    std::string model = "fake";
    double guidance = 1.5;
    std::function<std::string(const StepRequest&)> answer = default_answer;
  };
  explicit FakeGenerator(Options o) : o_(std::move(o)), rng_(o_.scramble) {}

  std::size_t capacity() const override { return o_.capacity; }
  void submit(StepRequest request) override {
    if (queue_.size() >= o_.capacity) fail(ErrorCode::Other, "fake: submit beyond capacity {}", o_.capacity);
    log_.push_back(request);
    const int latency = std::uniform_int_distribution<int>(1, o_.max_latency)(rng_);
    queue_.push_back({std::move(request), latency});
    max_pending_ = std::max(max_pending_, queue_.size());
  }
  std::vector<StepResult> poll() override {
    ++polls_;
    if (o_.throw_after_polls >= 0 && polls_ > o_.throw_after_polls) fail(ErrorCode::Other, "fake: crash at poll {}", polls_);
    std::vector<StepResult> done;
    std::vector<Item> rest;
    for (auto& it : queue_) {
      if (--it.latency <= 0) {
        StepResult r;
        r.ticket = it.request.ticket;
        r.text = o_.answer(it.request);
        r.new_tokens = 1 + it.request.current.size() % 5;
        done.push_back(std::move(r));
      } else {
        rest.push_back(std::move(it));
      }
    }
    queue_ = std::move(rest);
    std::shuffle(done.begin(), done.end(), rng_);
    return done;
  }
  std::size_t pending() const override { return queue_.size(); }
  std::string model_name() const override { return o_.model; }
  double guidance() const override { return o_.guidance; }

  const std::vector<StepRequest>& log() const { return log_; }
  long polls() const { return polls_; }
  std::size_t max_pending() const { return max_pending_; }

 private:
  struct Item {
    StepRequest request;
    int latency;
  };
  Options o_;
  std::mt19937 rng_;
  std::vector<Item> queue_;
  std::vector<StepRequest> log_;
  long polls_ = 0;
  std::size_t max_pending_ = 0;
};

using rankemb::test::TempDir;

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void spit(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs `f`, which must throw rankemb::Error; returns it (a test failure if nothing is thrown).
template <typename F>
Error expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a rankemb::Error";
  return Error(ErrorCode::Other, "<none thrown>");
}

}  // namespace rankemb::generate::test
