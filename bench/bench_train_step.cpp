// Seconds per `rankemb train` step (issue 5, item 5): runs the real Trainer on one chain file
// (each step = one chain: student forward + backward, ranking loss, clip, AdamW) with dev
// evaluation and model/checkpoint writing off, and prints one JSONL record with the median step
// time after warm-up steps. The teacher's targets are cached by the Trainer, so the first step
// (which computes them) is a warm-up step. scripts/bench_train_step.py runs this next to a Python
// PyTorch eager reference doing what the authors' code does.
//
// usage: bench_train_step STUDENT_DIR CHAINS.jsonl [--teacher DIR] [--dtype float32|bfloat16]
//                         [--steps 5] [--warmup 2] [--threads N] [--pooler NAME] [--mlp-only-train 0|1]
//                         [--length-buckets 1] [--max-length 32] [--name NAME]
//                         [--profile TRACE.json]  (Chrome trace of the whole run, warm-up steps included;
//                                                  scripts/profile_summary.py --per N averages over N steps)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "profile_trace.h"
#include "rankemb/chains/training.h"
#include "rankemb/train/trainer.h"
#include "rankemb/util/error.h"
#include "rankemb/util/progress.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s STUDENT_DIR CHAINS.jsonl [--teacher DIR] [--dtype float32|bfloat16] [--steps 5] [--warmup 2] "
               "[--threads N] [--pooler NAME] [--mlp-only-train 0|1] [--length-buckets 1] [--max-length 32] "
               "[--name NAME] [--profile TRACE.json]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage(argv[0]);
  namespace fs = std::filesystem;
  std::string student = argv[1], chains = argv[2], teacher, dtype = "float32", pooler, name, profile;
  long steps = 5, warmup = 2, threads = 0, buckets = 1, max_length = 32;
  bool mlp = false;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--teacher") teacher = v;
    else if (a == "--dtype") dtype = v;
    else if (a == "--steps") steps = std::max(1L, std::atol(v.c_str()));
    else if (a == "--warmup") warmup = std::max(1L, std::atol(v.c_str()));
    else if (a == "--threads") threads = std::atol(v.c_str());
    else if (a == "--pooler") pooler = v;
    else if (a == "--mlp-only-train") mlp = v == "1";
    else if (a == "--length-buckets") buckets = std::max(1L, std::atol(v.c_str()));
    else if (a == "--max-length") max_length = std::atol(v.c_str());
    else if (a == "--name") name = v;
    else if (a == "--profile") profile = v;
    else return usage(argv[0]);
  }
  if (dtype != "float32" && dtype != "bfloat16") return usage(argv[0]);
  fs::path out = fs::temp_directory_path() / ("rankemb_bench_train_" + std::to_string(::getpid()));
  try {
    if (threads > 0) at::set_num_threads(static_cast<int>(threads));
    rankemb::train::TrainOptions o;
    o.student = student;
    o.teacher = teacher;
    o.output_dir = out;
    o.dtype = rankemb::parse_dtype(dtype);
    o.max_steps = warmup + steps;
    o.max_length = max_length;
    o.evaluate = false;
    o.write_curve = false;
    o.save_outputs = false;
    o.mlp_only_train = mlp;
    o.length_buckets = buckets;
    if (!pooler.empty()) o.pooler = rankemb::models::parse_pooler(pooler);
    fs::remove_all(out);
    rankemb::train::Trainer trainer(rankemb::chains::read_chains(chains).chains, o);
    rankemb::NullProgress quiet;
    rankemb::train::TrainResult r = [&] {
      rankemb::bench::ProfileTrace trace(profile);
      return trainer.run(quiet);
    }();
    fs::remove_all(out);
    std::vector<double> times;
    for (std::size_t i = static_cast<std::size_t>(warmup); i < r.steps.size(); ++i) times.push_back(r.steps[i].seconds);
    if (times.empty()) {
      std::fprintf(stderr, "bench_train_step: the run ended after %zu steps, within the %d warm-up steps; nothing to time\n",
                   r.steps.size(), static_cast<int>(warmup));
      return 2;
    }
    auto median_of = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    const double median = median_of(times);
    // Median seconds of each phase over the timed steps (StepPhases: clocks, not the profiler).
    std::map<std::string, std::vector<double>> by_phase;
    for (std::size_t i = static_cast<std::size_t>(warmup); i < r.steps.size(); ++i) {
      for (const auto& [phase, seconds] : r.steps[i].phases.named()) by_phase[phase].push_back(seconds);
    }
    nlohmann::json phases;
    for (const auto& [phase, v] : by_phase) phases[phase] = median_of(v);
    nlohmann::json rec{{"impl", "rankemb"},
                       {"name", name.empty() ? student : name},
                       {"dtype", dtype},
                       {"threads", at::get_num_threads()},
                       {"length_buckets", buckets},
                       {"mlp_only_train", mlp},
                       {"median_s", median},
                       {"first_step_s", r.steps.front().seconds},
                       {"phases_median_s", phases},
                       {"step_s", times},
                       {"losses", [&] {
                          std::vector<double> l;
                          for (const auto& s : r.steps) l.push_back(s.loss);
                          return l;
                        }()}};
    std::printf("%s\n", rec.dump().c_str());
    return 0;
  } catch (const rankemb::Error& e) {
    fs::remove_all(out);
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
}
