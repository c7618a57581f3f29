// Sentence-encoder throughput: loads a model directory, encodes every line of a text file with
// SentenceEncoder::encode (length-sorted batches, no-grad), a warm-up on the first batches, then
// N timed passes, and prints one JSONL record with the median. scripts/bench_encoders.py runs this next to
// sentence-transformers / transformers / the USE-Lite node runtime and reports the ratios.
//
// usage: bench_encode MODEL_DIR INPUT.txt [--batch 32] [--dtype float32|bfloat16] [--threads N]
//                     [--repeats 5] [--warmup-batches 4] [--pooler NAME] [--name NAME] [--npy OUT.npy]
//                     [--profile TRACE.json]  (Chrome trace of the timed passes; scripts/profile_summary.py)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "profile_trace.h"
#include "rankemb/io/npy.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"
#include "rankemb/util/progress.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s MODEL_DIR INPUT.txt [--batch 32] [--dtype float32|bfloat16] [--threads N] [--repeats 5] "
               "[--warmup-batches 4] [--pooler NAME] [--name NAME] [--npy OUT.npy] [--profile TRACE.json]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage(argv[0]);
  std::string model = argv[1], input = argv[2], dtype = "float32", name, npy, pooler, profile;
  long batch = 32, threads = 0, repeats = 5, warmup_batches = 4;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--batch") batch = std::atol(v.c_str());
    else if (a == "--dtype") dtype = v;
    else if (a == "--threads") threads = std::atol(v.c_str());
    else if (a == "--repeats") repeats = std::max(1L, std::atol(v.c_str()));
    else if (a == "--warmup-batches") warmup_batches = std::max(0L, std::atol(v.c_str()));
    else if (a == "--pooler") pooler = v;
    else if (a == "--name") name = v;
    else if (a == "--npy") npy = v;
    else if (a == "--profile") profile = v;
    else return usage(argv[0]);
  }
  if (dtype != "float32" && dtype != "bfloat16") return usage(argv[0]);
  if (name.empty()) name = model;
  try {
    if (threads > 0) at::set_num_threads(static_cast<int>(threads));
    auto t0 = std::chrono::steady_clock::now();
    rankemb::models::LoadOptions load{.dtype = rankemb::parse_dtype(dtype)};
    if (!pooler.empty()) load.pooler = rankemb::models::parse_pooler(pooler);
    auto encoder = rankemb::models::load_encoder(model, load);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::ifstream in(input);
    if (!in) {
      std::fprintf(stderr, "cannot open %s\n", input.c_str());
      return 3;
    }
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) {
      if (!l.empty()) lines.push_back(std::move(l));
    }

    rankemb::NullProgress progress;
    rankemb::models::EncodeOptions opts{.batch = batch};
    // Warm-up on the first batches (allocator, oneDNN primitives), as the Python side does.
    std::vector<std::string> warm(lines.begin(),
                                  lines.begin() + std::min<long>(static_cast<long>(lines.size()), warmup_batches * batch));
    torch::Tensor emb = encoder->encode(warm, opts, progress);
    std::vector<double> times;
    rankemb::bench::ProfileTrace trace(profile);
    for (long r = 0; r < repeats; ++r) {
      auto s = std::chrono::steady_clock::now();
      emb = encoder->encode(lines, opts, progress);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    double best = sorted.front(), median = sorted[sorted.size() / 2];
    if (!npy.empty()) {
      emb = emb.contiguous();
      std::vector<std::int64_t> shape{emb.size(0), emb.size(1)};
      rankemb::io::write_npy(npy, {emb.data_ptr<float>(), static_cast<std::size_t>(emb.numel())}, shape);
    }
    std::string all;
    for (std::size_t i = 0; i < times.size(); ++i) {
      if (i) all += ',';
      all += std::to_string(times[i]);
    }
    std::printf(
        "{\"impl\":\"rankemb\",\"model\":\"%s\",\"dtype\":\"%s\",\"batch\":%ld,\"threads\":%d,\"sentences\":%zu,"
        "\"load_s\":%.3f,\"best_s\":%.4f,\"median_s\":%.4f,\"times_s\":[%s],\"sentences_per_s\":%.1f}\n",
        name.c_str(), dtype.c_str(), batch, at::get_num_threads(), lines.size(), load_s, best, median, all.c_str(),
        static_cast<double>(lines.size()) / median);
    return 0;
  } catch (const rankemb::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
