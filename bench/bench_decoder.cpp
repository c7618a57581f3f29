// Decoder throughput: loads a causal LM, fills N slots with a short prompt each (one batched
// prefill), then times `steps` batched decode steps (every slot appends one token per step, fed
// its own greedy argmax) and prints one JSONL record: decode tokens/s over all slots, ms per step.
//
// usage: bench_decoder MODEL_DIR [--slots 1] [--steps 64] [--prompt 8] [--dtype float32|bfloat16]
//                     [--threads N] [--name NAME]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "rankemb/models/causal_lm.h"
#include "rankemb/util/error.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s MODEL_DIR [--slots 1] [--steps 64] [--prompt 8] [--dtype float32|bfloat16] [--threads N] "
               "[--name NAME]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(argv[0]);
  std::string model = argv[1], dtype = "float32", name;
  long slots = 1, steps = 64, prompt = 8, threads = 0;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--slots") slots = std::max(1L, std::atol(v.c_str()));
    else if (a == "--steps") steps = std::max(1L, std::atol(v.c_str()));
    else if (a == "--prompt") prompt = std::max(1L, std::atol(v.c_str()));
    else if (a == "--dtype") dtype = v;
    else if (a == "--threads") threads = std::atol(v.c_str());
    else if (a == "--name") name = v;
    else return usage(argv[0]);
  }
  if (dtype != "float32" && dtype != "bfloat16") return usage(argv[0]);
  if (name.empty()) name = model;
  try {
    if (threads > 0) at::set_num_threads(static_cast<int>(threads));
    auto lm = rankemb::models::load_causal_lm(
        model, {.dtype = rankemb::parse_dtype(dtype)});
    lm->reserve(static_cast<std::size_t>(slots), static_cast<std::size_t>(prompt + steps + 1));
    std::vector<std::size_t> ids(static_cast<std::size_t>(slots));
    std::vector<std::vector<std::int64_t>> toks(ids.size());
    const std::int64_t bos = lm->config().bos_token_ids.empty() ? 1 : lm->config().bos_token_ids[0];
    for (std::size_t s = 0; s < ids.size(); ++s) {
      ids[s] = s;
      toks[s].push_back(bos);
      // Different prompts per slot, so the batch is not one sequence repeated.
      for (long t = 1; t < prompt; ++t) toks[s].push_back(static_cast<std::int64_t>((s * 131 + t * 17) % lm->vocab_size()));
    }
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor logits = lm->forward(ids, toks);
    auto t1 = std::chrono::steady_clock::now();
    for (long step = 0; step < steps; ++step) {
      torch::Tensor next = logits.argmax(-1);
      for (std::size_t s = 0; s < ids.size(); ++s) toks[s] = {next[static_cast<std::int64_t>(s)].item<std::int64_t>()};
      logits = lm->forward(ids, toks);
    }
    auto t2 = std::chrono::steady_clock::now();
    double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    double decode_s = std::chrono::duration<double>(t2 - t1).count();
    std::printf(
        "{\"name\":\"%s\",\"dtype\":\"%s\",\"slots\":%ld,\"prompt\":%ld,\"steps\":%ld,\"threads\":%d,"
        "\"prefill_ms\":%.3f,\"ms_per_step\":%.4f,\"decode_tokens_per_s\":%.1f}\n",
        name.c_str(), dtype.c_str(), slots, prompt, steps, at::get_num_threads(), prefill_s * 1e3,
        decode_s * 1e3 / static_cast<double>(steps), static_cast<double>(steps * slots) / decode_s);
  } catch (const rankemb::Error& e) {
    std::fprintf(stderr, "bench_decoder: %s\n", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}
