// rankemb chains: inspect and combine chain files: stats (drift quality report), merge (shards). (issues 6, 7)
#include "cli.h"

namespace rankemb::cli {

void register_chains(CLI::App& root, ExitCode& rc) {
  auto* cmd = root.add_subcommand("chains", "Inspect and merge chain files");
  cmd->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto judge = std::make_shared<std::string>();
  auto* stats = cmd->add_subcommand("stats", "Kept/dropped counts, lengths and drift monotonicity under a judge encoder");
  stats->add_option("file", *file, "Chains JSONL")->required();
  stats->add_option("--judge", *judge, "Encoder used to measure similarity to the seed")->required();
  stats->callback([&rc] { not_implemented_yet("chains stats", 7); });
  auto shards = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto* merge = cmd->add_subcommand("merge", "Join shard outputs of 'rankemb generate --shard' into one file");
  merge->add_option("shards", *shards, "Shard JSONL files")->required();
  merge->add_option("-o,--output", *out, "Merged JSONL")->required();
  merge->callback([&rc] { not_implemented_yet("chains merge", 6); });
}

}  // namespace rankemb::cli
