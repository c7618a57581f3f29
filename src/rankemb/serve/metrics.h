// rankemb::serve Metrics: the server's counters and histograms, rendered in the Prometheus text
// exposition format for GET /metrics. Thread-safe (one mutex; updates are a few per request).
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace rankemb::serve {

class Metrics {
 public:
  Metrics();
  // One finished HTTP request: its route ("/embed"), status and wall time.
  void request(const std::string& route, int status, double seconds);
  // One model call of the batcher.
  void batch(std::size_t texts, std::size_t tokens, double seconds);
  // Tokens generated for one /v1/completions request.
  void completion_tokens(std::size_t tokens);
  // What the caller samples at render time.
  struct Gauges {
    std::size_t queue_depth = 0;          // texts waiting for the encoder
    std::size_t llm_queue_depth = 0;      // generation requests running or waiting for the LLM
    std::size_t connections_busy = 0;     // HTTP connections being served
    std::size_t connections_waiting = 0;  // accepted connections waiting for an HTTP thread
  };
  // Prometheus text format.
  std::string render(const Gauges& gauges) const;

 private:
  struct Histogram {
    std::vector<double> bounds;     // upper bounds, ascending; +Inf implied
    std::vector<std::size_t> counts;  // per bound, not cumulative; last = +Inf
    double sum = 0;
    std::size_t total = 0;
    explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
    void observe(double v);
    void render(std::string& out, const std::string& name, const std::string& labels) const;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::size_t> requests_;  // (route, status) -> count
  std::map<std::string, Histogram> latency_;                     // route -> seconds
  Histogram batch_texts_, batch_seconds_;
  std::size_t tokens_ = 0, batches_ = 0, completion_tokens_ = 0;
};

}  // namespace rankemb::serve
