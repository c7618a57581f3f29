// Tokenization throughput: encodes every line of a text file with one tokenizer, repeatedly,
// single-threaded, and prints one JSONL record. scripts/bench_tokenizers.py runs this next to
// the reference libraries on the same input and reports the ratios.
//
// usage: bench_tokenize TOKENIZER_PATH INPUT.txt [REPEATS=5] [NAME]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_PATH INPUT.txt [REPEATS=5] [NAME]\n", argv[0]);
    return 2;
  }
  try {
    auto t0 = std::chrono::steady_clock::now();
    auto tok = rankemb::text::load_tokenizer(argv[1]);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ifstream in(argv[2]);
    if (!in) {
      std::fprintf(stderr, "cannot open %s\n", argv[2]);
      return 3;
    }
    std::vector<std::string> lines;
    std::size_t bytes = 0;
    for (std::string l; std::getline(in, l);) {
      bytes += l.size();
      lines.push_back(std::move(l));
    }
    int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
    std::string name = argc > 4 ? argv[4] : argv[1];
    // Warm-up pass fills caches, as a long-running process would have them.
    std::size_t tokens = 0;
    for (const auto& l : lines) tokens += tok->encode(l).size();
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) {
      auto s = std::chrono::steady_clock::now();
      std::size_t n = 0;
      for (const auto& l : lines) n += tok->encode(l).size();
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
      if (n != tokens) return 1;  // encoding must be deterministic
    }
    std::sort(times.begin(), times.end());
    double best = times.front(), median = times[times.size() / 2];
    std::printf(
        "{\"impl\":\"rankemb\",\"tokenizer\":\"%s\",\"kind\":\"%s\",\"sentences\":%zu,\"bytes\":%zu,\"tokens\":%zu,"
        "\"load_s\":%.4f,\"best_s\":%.5f,\"median_s\":%.5f,\"sentences_per_s\":%.1f,\"mb_per_s\":%.3f}\n",
        name.c_str(), std::string(tok->kind()).c_str(), lines.size(), bytes, tokens, load_s, best, median,
        static_cast<double>(lines.size()) / median, static_cast<double>(bytes) / median / 1e6);
    return 0;
  } catch (const rankemb::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
