#include "rankemb/chains/shuffle.h"

#include <fmt/format.h>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::chains {

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): fixed arithmetic, so the control is the same file on
// every platform (std::shuffle's distribution is implementation-defined).
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection (no modulo bias).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    for (;;) {
      std::uint64_t x = next();
      if (x < limit) return x % n;
    }
  }
};

}  // namespace

void shuffle_sentences(ChainRecord& record, std::uint64_t seed) {
  SplitMix64 rng{seed ^ (record.id * 0xD1B54A32D192ED03ULL)};
  auto& s = record.sentences;
  for (std::size_t i = s.size(); i > 1; --i) std::swap(s[i - 1], s[rng.below(i)]);
  record.model += fmt::format(" shuffled(seed {})", seed);
}

ShuffleSummary shuffle_chain_file(const std::filesystem::path& input, const std::filesystem::path& output,
                                  std::uint64_t seed) {
  io::check_not_an_input(output, {input});
  bool unfinished = false;
  std::vector<ChainRecord> records = read_chain_records(input, &unfinished);
  if (unfinished)
    fail(ErrorCode::Input, "{}: the last line is unfinished (an interrupted run? finish it with resume first)",
         input.string());
  ShuffleSummary summary;
  std::string out;
  for (ChainRecord& r : records) {
    const std::vector<std::string> before = r.sentences;
    shuffle_sentences(r, seed);
    ++summary.chains;
    if (r.sentences != before) ++summary.moved;
    out += format_chain_record(r);
    out += '\n';
  }
  io::write_atomic(output, out);
  return summary;
}

}  // namespace rankemb::chains
