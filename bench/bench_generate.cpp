// Guided-generation throughput of the LLM backend (llm/llm_generator): one chain step for
// each of N seed sentences (positive = seed i, negative = seed i+1, so every guided request runs
// two streams), with continuous batching, after a short warm-up. Prints one JSONL record:
// generated tokens per second (tokens of the chains, not of the streams), forward calls and
// per-poll latency. scripts/bench_generate.py runs the same loop with Hugging Face transformers.
//
// usage: bench_generate MODEL_DIR INPUT.txt [--chains 16] [--batch 16] [--guidance 1.5]
//                       [--max-new-tokens 32] [--dtype float32|bfloat16] [--threads N]
//                       [--chat-template auto] [--prompt-template TEXT] [--name NAME]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "rankemb/llm/llm_generator.h"
#include "rankemb/util/error.h"

namespace {

using Clock = std::chrono::steady_clock;

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s MODEL_DIR INPUT.txt [--chains 16] [--batch 16] [--guidance 1.5] [--max-new-tokens 32] "
               "[--dtype float32|bfloat16] [--threads N] [--chat-template auto] [--prompt-template TEXT] [--name NAME]\n",
               argv0);
  return 2;
}

// ASCII-only JSON string body: control characters become spaces, other bytes '?', so a sample
// cut mid-character stays valid.
std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c < 0x20 ? ' ' : c >= 0x80 ? '?' : static_cast<char>(c);
  }
  return out;
}

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage(argv[0]);
  rankemb::llm::LlmGeneratorOptions o;
  o.model_dir = argv[1];
  std::string input = argv[2], name;
  long chains = 16, threads = 0;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--chains") chains = std::max(1L, std::atol(v.c_str()));
    else if (a == "--batch") o.batch = static_cast<std::size_t>(std::max(1L, std::atol(v.c_str())));
    else if (a == "--guidance") o.guidance = std::atof(v.c_str());
    else if (a == "--max-new-tokens") o.max_new_tokens = std::atoi(v.c_str());
    else if (a == "--dtype") o.dtype = rankemb::parse_dtype(v);
    else if (a == "--threads") threads = std::atol(v.c_str());
    else if (a == "--chat-template") o.chat_template = v;
    else if (a == "--prompt-template") o.prompt_template = v;
    else if (a == "--name") name = v;
    else return usage(argv[0]);
  }
  if (name.empty()) name = o.model_dir.filename().string();
  std::ifstream in(input);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", input.c_str());
    return 3;
  }
  std::vector<std::string> seeds;
  for (std::string l; std::getline(in, l) && static_cast<long>(seeds.size()) < chains + 1;)
    if (!l.empty()) seeds.push_back(l);
  if (static_cast<long>(seeds.size()) < chains + 1) {
    std::fprintf(stderr, "%s has fewer than %ld sentences\n", input.c_str(), chains + 1);
    return 3;
  }
  try {
    if (threads > 0) at::set_num_threads(static_cast<int>(threads));
    auto t0 = Clock::now();
    auto gen = rankemb::llm::make_llm_generator(o);
    double load_s = seconds(t0, Clock::now());

    auto request = [&](long i) {
      return rankemb::generate::StepRequest{.ticket = static_cast<std::uint64_t>(i), .current = seeds[static_cast<std::size_t>(i)],
                                            .previous = seeds[static_cast<std::size_t>(i + 1)], .chain_id = static_cast<std::uint64_t>(i), .step = 2};
    };
    // Warm-up: one request through prefill and a few decode steps (allocator, oneDNN primitives).
    gen->submit(request(0));
    for (int k = 0; k < 4 && gen->pending() > 0; ++k) gen->poll();
    while (gen->pending() > 0) gen->poll();

    std::vector<double> poll_ms;
    std::size_t tokens = 0, limit_hits = 0;
    long next = 0, finished = 0;
    std::string sample;
    auto start = Clock::now();
    while (finished < chains) {
      while (next < chains && gen->pending() < gen->capacity()) gen->submit(request(next++));
      auto p0 = Clock::now();
      auto done = gen->poll();
      poll_ms.push_back(seconds(p0, Clock::now()) * 1000);
      for (const auto& r : done) {
        tokens += r.new_tokens;
        limit_hits += r.hit_token_limit;
        if (r.ticket == 0) sample = r.text;
        ++finished;
      }
    }
    double total_s = seconds(start, Clock::now());
    std::sort(poll_ms.begin(), poll_ms.end());
    auto pct = [&](double q) { return poll_ms[std::min(poll_ms.size() - 1, static_cast<std::size_t>(q * static_cast<double>(poll_ms.size())))]; };
    std::printf(
        "{\"impl\":\"rankemb\",\"model\":\"%s\",\"dtype\":\"%s\",\"batch\":%zu,\"chains\":%ld,\"guidance\":%g,\"threads\":%d,"
        "\"max_new_tokens\":%d,\"load_s\":%.3f,\"total_s\":%.3f,\"new_tokens\":%zu,\"limit_hits\":%zu,\"forward_calls\":%zu,"
        "\"poll_p50_ms\":%.2f,\"poll_p95_ms\":%.2f,\"tokens_per_s\":%.2f,\"sample\":\"%s\"}\n",
        json_escape(name).c_str(), std::string(rankemb::dtype_name(o.dtype)).c_str(), o.batch, chains, o.guidance, at::get_num_threads(), o.max_new_tokens, load_s,
        total_s, tokens, limit_hits, poll_ms.size(), pct(0.5), pct(0.95), static_cast<double>(tokens) / total_s,
        json_escape(sample.substr(0, 80)).c_str());
    return 0;
  } catch (const rankemb::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
