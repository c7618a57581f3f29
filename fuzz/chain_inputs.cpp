// Fuzzes the readers of chain and seed files, which come from users, from other tools and from
// interrupted runs: the line splitter with its unfinished-tail rule (chains/chain_file.h), the
// chain JSONL and the authors' list_sent CSV (chains/training.h), Python list literals, seed
// files, generate's output records (chains/record.h, read back by --resume and `chains merge`)
// and --shard values. The first input byte picks the reader, the
// rest is the text. Only rankemb::Error is an expected failure; on success the invariants the
// callers rely on are checked: usable chains have >= 2 valid UTF-8 sentences, seeds are valid
// UTF-8 with increasing ids, and a parsed record formats back to a line that parses to the same
// bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rankemb/chains/chain_file.h"
#include "rankemb/chains/record.h"
#include "rankemb/chains/training.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace {

using rankemb::unicode::find_invalid_utf8;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_chains(const rankemb::chains::ChainFile& file) {
  for (const auto& chain : file.chains) {
    check(chain.sentences.size() >= 2);
    for (const auto& s : chain.sentences) check(!find_invalid_utf8(s));
  }
}

void chains_jsonl(std::string_view text, bool strict) {
  rankemb::chains::ChainReadOptions options;
  options.strict = strict;
  check_chains(rankemb::chains::parse_chains_jsonl(text, "fuzz.jsonl", options));
}

void chains_csv(std::string_view text, bool tabs) {
  check_chains(rankemb::chains::parse_chains_csv(text, "fuzz.csv", {}, tabs ? '\t' : ','));
}

void python_list(std::string_view text) {
  for (const auto& s : rankemb::chains::parse_python_string_list(text)) check(!find_invalid_utf8(s));
}

void seeds(std::string_view text) {
  auto parsed = rankemb::generate::parse_seeds(text, "fuzz.txt");
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    check(!find_invalid_utf8(parsed[i].text) && !parsed[i].text.empty());
    check(i == 0 || parsed[i].id > parsed[i - 1].id);
  }
}

void chain_record(std::string_view text) {
  const auto record = rankemb::chains::parse_chain_record(text, "fuzz.jsonl:1");
  const std::string line = rankemb::chains::format_chain_record(record);
  check(!find_invalid_utf8(line) && line.find('\n') == std::string::npos);
  const auto again = rankemb::chains::parse_chain_record(line, "formatted");
  check(rankemb::chains::format_chain_record(again) == line);
}

// Lines lie inside the text, in order, hold no '\n'; the unfinished tail starts after the last
// line and never parses as JSON.
void chain_lines(std::string_view text) {
  const auto file = rankemb::chains::split_chain_lines(std::string(text), "fuzz.jsonl");
  std::size_t end = 0;
  for (const auto& line : file.lines) {
    check(line.offset >= end && line.offset + line.length <= file.complete_bytes);
    check(file.view(line).find('\n') == std::string_view::npos);
    end = line.offset + line.length;
  }
  check(file.complete_bytes <= text.size());
  if (file.unfinished()) check(!nlohmann::json::accept(text.substr(file.complete_bytes)));
}

void shard(std::string_view text) {
  const auto s = rankemb::generate::parse_shard(text);
  check(s.index < s.count);
  check(rankemb::generate::parse_shard(rankemb::generate::format_shard(s)) == s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 9) {
      case 0: chains_jsonl(text, false); break;
      case 1: chains_jsonl(text, true); break;
      case 2: chains_csv(text, false); break;
      case 3: chains_csv(text, true); break;
      case 4: python_list(text); break;
      case 5: seeds(text); break;
      case 6: chain_record(text); break;
      case 7: chain_lines(text); break;
      default: shard(text); break;
    }
  } catch (const rankemb::Error&) {
    // Malformed input is reported as an Error naming the place; that is the expected outcome.
  }
  return 0;
}
