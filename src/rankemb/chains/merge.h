// Joins the outputs of sharded runs (`rankemb generate --shard i/N`) into one chain file, in id
// order, byte-identical to what one unsharded run writes. Needs no libtorch.
#pragma once

#include <cstddef>
#include <filesystem>
#include <vector>

namespace rankemb::chains {

struct MergeSummary {
  std::size_t files = 0, chains = 0, kept = 0, dropped = 0;
};

// Reads every line of every input as a chain record, sorts by id and writes `output` atomically
// (lines copied verbatim). Throws Error(Input) naming file:line on a malformed line, an unfinished
// last line (chain_file.h: an interrupted shard, resume it first), a duplicate id (naming both places), or
// records whose model/guidance/steps differ (naming both files). Inputs that have a
// "<input>.meta.json" must agree on everything in it but the shard (seed file, limit, settings),
// and each must hold as many chains as its sidecar has seeds (a shard killed between lines is
// not complete); when every input has its sidecar, every shard i/N of the run must be there,
// once. Error(Usage) with no inputs or when the output is one of the inputs.
MergeSummary merge_chain_shards(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& output);

}  // namespace rankemb::chains
