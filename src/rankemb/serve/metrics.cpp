#include "rankemb/serve/metrics.h"

#include <fmt/format.h>

namespace rankemb::serve {

namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

}  // namespace

void Metrics::Histogram::observe(double v) {
  std::size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++total;
}

void Metrics::Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  std::size_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, total);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum, name, braces, total);
}

Metrics::Metrics() : batch_texts_(kBatchBounds), batch_seconds_(kLatencyBounds) {}

void Metrics::request(const std::string& route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  latency_.try_emplace(route, kLatencyBounds).first->second.observe(seconds);
}

void Metrics::batch(std::size_t texts, std::size_t tokens, double seconds) {
  std::lock_guard lock(mutex_);
  ++batches_;
  tokens_ += tokens;
  batch_texts_.observe(static_cast<double>(texts));
  batch_seconds_.observe(seconds);
}

void Metrics::completion_tokens(std::size_t tokens) {
  std::lock_guard lock(mutex_);
  completion_tokens_ += tokens;
}

std::string Metrics::render(const Gauges& gauges) const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP rankemb_requests_total HTTP requests by route and status.\n# TYPE rankemb_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("rankemb_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  out += "# HELP rankemb_errors_total HTTP requests answered with a status of 400 or more.\n# TYPE rankemb_errors_total counter\n";
  std::size_t errors = 0;
  for (const auto& [key, n] : requests_)
    if (key.second >= 400) errors += n;
  out += fmt::format("rankemb_errors_total {}\n", errors);
  out += "# HELP rankemb_request_duration_seconds Request wall time by route.\n# TYPE rankemb_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) h.render(out, "rankemb_request_duration_seconds", fmt::format("route=\"{}\"", route));
  out += "# HELP rankemb_batch_texts Texts per model call.\n# TYPE rankemb_batch_texts histogram\n";
  batch_texts_.render(out, "rankemb_batch_texts", "");
  out += "# HELP rankemb_batch_duration_seconds Wall time per model call.\n# TYPE rankemb_batch_duration_seconds histogram\n";
  batch_seconds_.render(out, "rankemb_batch_duration_seconds", "");
  out += fmt::format("# HELP rankemb_batches_total Model calls.\n# TYPE rankemb_batches_total counter\nrankemb_batches_total {}\n", batches_);
  out += fmt::format("# HELP rankemb_tokens_total Tokens embedded.\n# TYPE rankemb_tokens_total counter\nrankemb_tokens_total {}\n", tokens_);
  out += fmt::format("# HELP rankemb_queue_depth Texts waiting for the model.\n# TYPE rankemb_queue_depth gauge\nrankemb_queue_depth {}\n", gauges.queue_depth);
  out += fmt::format("# HELP rankemb_completion_tokens_total Tokens generated for /v1/completions.\n"
                     "# TYPE rankemb_completion_tokens_total counter\nrankemb_completion_tokens_total {}\n", completion_tokens_);
  out += fmt::format("# HELP rankemb_llm_queue_depth Generation requests running or waiting for the LLM.\n"
                     "# TYPE rankemb_llm_queue_depth gauge\nrankemb_llm_queue_depth {}\n", gauges.llm_queue_depth);
  out += fmt::format("# HELP rankemb_http_connections HTTP connections being served (busy) or accepted and waiting for a thread.\n"
                     "# TYPE rankemb_http_connections gauge\nrankemb_http_connections{{state=\"busy\"}} {}\n"
                     "rankemb_http_connections{{state=\"waiting\"}} {}\n", gauges.connections_busy, gauges.connections_waiting);
  return out;
}

}  // namespace rankemb::serve
