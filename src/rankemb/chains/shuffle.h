// The shuffled-order control of the experiments: the same chains with x1..xn put in a random
// order within each chain (the seed x0 stays first), so a refinement trained on them sees the same
// sentences and the same teacher similarities but no drift order. A gain the control also gets
// is not the chain order's. Needs no libtorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "rankemb/chains/record.h"

namespace rankemb::chains {

// Permutes record.sentences in place (Fisher-Yates over a SplitMix64 stream seeded from `seed`
// and the record's id, so each chain's order depends only on those two: the same on every
// platform, whatever order the records come in). The model field gains " shuffled(seed S)".
void shuffle_sentences(ChainRecord& record, std::uint64_t seed);

struct ShuffleSummary {
  std::size_t chains = 0, moved = 0;  // moved: chains whose order changed
};

// Reads `input`, shuffles every chain (kept and dropped) and writes `output` atomically. Error(Usage)
// when `output` is `input`; Error(Input) naming file:line for a malformed line.
ShuffleSummary shuffle_chain_file(const std::filesystem::path& input, const std::filesystem::path& output,
                                  std::uint64_t seed);

}  // namespace rankemb::chains
