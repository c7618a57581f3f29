// Fuzzes the HTML report (report/report.cpp) with any JSON in any of its input slots: the first
// byte picks the slot (results.json, chain_stats.json, a metrics.jsonl record, a chain file's
// meta), the rest is parsed as JSON (bytes that are not JSON end the input). The renderer must
// accept every shape without throwing, and nothing from the input may reach the page as markup:
// every "<" of the input is escaped, so the page holds no <script> and exactly its own
// <section> elements.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rankemb/report/report.h"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return 0;
  rankemb::report::ReportInputs in;
  rankemb::report::Run run{.dir = "run<dir>", .results = nullptr, .metrics = {}, .chains = {}};
  switch (data[0] % 5) {
    case 0: run.results = std::move(j); break;
    case 1: run.chains.push_back({.label = "g", .source = "f", .stats = std::move(j), .meta = nullptr}); break;
    case 2: run.metrics.push_back(std::move(j)); break;
    case 3: in.chain_sets.push_back({.label = "<b>", .source = "f", .stats = std::move(j), .meta = nullptr}); break;
    default: in.chain_sets.push_back({.label = "m", .source = "f", .stats = nlohmann::json::object(), .meta = std::move(j)});
  }
  in.runs.push_back(run);
  in.runs.push_back(std::move(run));  // two runs: the spread table too
  const std::string page = rankemb::report::render_report(in);
  check(page.rfind("<!DOCTYPE html>", 0) == 0);
  check(count(page, "<script") == 0);
  check(count(page, "<section") == 3);
  check(count(page, "<b>") == 0);  // the label is text, not markup
  return 0;
}
