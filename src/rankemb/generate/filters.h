// The chain filters of the method (METHOD.md, Stage 1), as the authors apply them
// (hly1998/RankingSentenceGeneration): generation.py marks a chain broken when any output
// contains "\n"; sentences_merge.py keeps a chain [seed, x1..xn] only when its last and its
// second-to-last element each occur fewer than 3 times in that list -- the seed is part of the
// list, so it counts. We add one rule: an empty output drops the chain (the next step would have
// nothing to rewrite). Newline and empty are known the moment the step returns, so the runner
// stops such a chain early; repetition is judged on the finished chain. Needs no libtorch.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rankemb::generate {

enum class DropReason {
  None,        // kept
  Newline,     // an output contains '\n'
  Empty,       // an output is empty (after the backend's stripping)
  Repetition,  // the last or second-to-last sentence occurs >= 3 times in [seed] + sentences
};

// "newline", "empty", "repetition" ("" for None): the chain record's "drop_reason".
std::string_view drop_reason_name(DropReason reason);

// The verdict on one new output, available at once: Newline, Empty or None.
DropReason check_step(std::string_view output);

// The repetition rule on a finished chain (seed counted, as the authors count it). Chains with
// fewer than 2 elements in [seed] + sentences cannot repeat 3 times and are kept.
bool is_repetitive(std::string_view seed, const std::vector<std::string>& sentences);

// All rules on a whole chain, in the order the runner applies them: the first step whose output
// fails check_step decides; otherwise repetition. None when the chain is kept.
DropReason filter_chain(std::string_view seed, const std::vector<std::string>& sentences);

}  // namespace rankemb::generate
