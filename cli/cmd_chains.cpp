// rankemb chains: inspect and combine chain files: stats (counts, lengths and drift monotonicity
// under a judge encoder), merge (shards of 'rankemb generate --shard') and shuffle (the
// shuffled-order control). The work is in quality/chain_stats, chains/merge and chains/shuffle;
// this file loads the judge and prints.
#include <iostream>

#include "cli.h"
#include "rankemb/chains/merge.h"
#include "rankemb/chains/shuffle.h"
#include "rankemb/quality/chain_stats.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/progress.h"

namespace rankemb::cli {

namespace {
struct StatsArgs {
  std::string file, judge, json;
  Dtype dtype = Dtype::Float32;
  int batch = 64;
  std::size_t examples = 0, matrices = 0;
};

int run_stats(const StatsArgs& a) {
  io::check_not_an_input(a.json, {a.file});
  std::unique_ptr<Progress> progress = make_progress();
  const quality::ChainStats stats = quality::chain_file_stats(
      a.file, {.model = a.judge, .dtype = a.dtype, .batch = a.batch}, {.examples = a.examples, .matrices = a.matrices},
      *progress);
  std::cout << a.file << '\n' << quality::format_chain_stats(stats);
  if (!a.json.empty()) {
    nlohmann::json j = quality::chain_stats_json(stats);
    j["file"] = a.file;
    j["judge"] = a.judge.empty() ? nlohmann::json() : nlohmann::json(a.judge);
    io::write_atomic(a.json, j.dump(2) + "\n");
  }
  std::cout.flush();
  return 0;
}

int run_merge(const std::vector<std::string>& shards, const std::string& out) {
  const std::vector<std::filesystem::path> inputs(shards.begin(), shards.end());
  const auto s = chains::merge_chain_shards(inputs, out);
  std::cout << out << ": " << s.chains << " chains from " << s.files << " files (kept " << s.kept << ", dropped "
            << s.dropped << ")\n";
  std::cout.flush();
  return 0;
}
int run_shuffle(const std::string& in, const std::string& out, std::uint64_t seed) {
  const auto s = chains::shuffle_chain_file(in, out, seed);
  std::cout << out << ": " << s.chains << " chains, x1..xn shuffled within each (" << s.moved
            << " changed order; seeds stay first)\n";
  std::cout.flush();
  return 0;
}
}  // namespace

void register_chains(CLI::App& root, ExitCode& rc) {
  auto* cmd = root.add_subcommand("chains", "Inspect, merge and shuffle chain files");
  cmd->require_subcommand(1);
  auto a = std::make_shared<StatsArgs>();
  auto* stats = cmd->add_subcommand("stats", "Kept/dropped counts, lengths and drift monotonicity under a judge encoder");
  stats->add_option("file", a->file, "Chains JSONL")->required();
  stats->add_option("--judge", a->judge, "Encoder used to measure similarity to the seed (without it: counts and lengths only)");
  stats->add_option("--json", a->json, "Also write the report as JSON to this file");
  stats->add_option("--batch", a->batch, "Sentences per judge batch")->check(positive());
  stats->add_option("--examples", a->examples, "Record this many kept and as many dropped chains in the JSON, each "
                    "sentence with its similarity to the seed (for 'rankemb report')")->check(in_range(0, 1000));
  stats->add_option("--matrices", a->matrices, "Of the kept examples, how many get their step-by-step similarity "
                    "matrix in the JSON")->check(in_range(0, 100));
  add_dtype_option(stats, a->dtype, "float32 or bfloat16 (the judge)");
  stats->callback([a, &rc] { rc = run_stats(*a); });
  auto shards = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto* merge = cmd->add_subcommand("merge", "Join shard outputs of 'rankemb generate --shard' into one file");
  merge->add_option("shards", *shards, "Shard JSONL files")->required();
  merge->add_option("-o,--output", *out, "Merged JSONL")->required();
  merge->callback([shards, out, &rc] { rc = run_merge(*shards, *out); });

  struct ShuffleArgs {
    std::string in, out;
    std::uint64_t seed = 1;
  };
  auto sa = std::make_shared<ShuffleArgs>();
  auto* shuffle = cmd->add_subcommand(
      "shuffle", "The shuffled-order control: the same chains with x1..xn in a random order within each chain "
                 "(same sentences, same teacher similarities, no drift order); train on it next to the original");
  shuffle->add_option("file", sa->in, "Chains JSONL")->required();
  shuffle->add_option("-o,--output", sa->out, "Shuffled chains JSONL")->required();
  shuffle->add_option("--seed", sa->seed, "Shuffle seed (the order of a chain depends only on it and the chain's id)");
  shuffle->callback([sa, &rc] { rc = run_shuffle(sa->in, sa->out, sa->seed); });
}

}  // namespace rankemb::cli
