#include "rankemb/generate/seeds.h"

#include <algorithm>

#include <fmt/format.h>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::generate {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
}  // namespace

std::vector<Seed> parse_seeds(std::string_view text, std::string_view source) {
  std::vector<Seed> seeds;
  std::size_t pos = 0;
  std::uint64_t index = 0;
  if (text.starts_with("\xEF\xBB\xBF")) pos = 3;  // a UTF-8 byte-order mark is not part of seed 0
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    const std::uint64_t id = index++;
    const std::size_t line_no = id + 1;
    if (const auto bad = unicode::find_invalid_utf8(line))
      fail(ErrorCode::Input, "{}:{}: invalid UTF-8 at byte {} of the line", source, line_no, *bad);
    std::size_t b = 0, e = line.size();
    while (b < e && is_space(line[b])) ++b;
    while (e > b && is_space(line[e - 1])) --e;
    line = line.substr(b, e - b);
    if (line.empty()) continue;
    if (line.find('\t') != std::string_view::npos)
      fail(ErrorCode::Input, "{}:{}: seed contains a tab; seeds are one plain sentence per line (a TSV file?)", source,
           line_no);
    if (line.size() > kMaxSeedBytes)
      fail(ErrorCode::Input, "{}:{}: seed of {} bytes, longer than the {} a sentence may have (one sentence per line)",
           source, line_no, line.size(), kMaxSeedBytes);
    if (line.find('\r') != std::string_view::npos)
      fail(ErrorCode::Input, "{}:{}: seed contains a carriage return inside the line (old Mac line endings?)", source,
           line_no);
    seeds.push_back(Seed{id, std::string(line)});
  }
  return seeds;
}

SeedFile read_seeds(const std::filesystem::path& path) {
  const std::string bytes = io::read_file(path);
  SeedFile f;
  f.seeds = parse_seeds(bytes, path.string());
  if (f.seeds.empty()) fail(ErrorCode::Input, "{}: no seed sentences (the file is empty or blank)", path.string());
  f.name = path.filename().string();
  f.size = bytes.size();
  f.hash = fnv1a64_hex(bytes);
  return f;
}

std::vector<Seed> select_seeds(const std::vector<Seed>& seeds, std::optional<std::size_t> limit, const Shard& shard) {
  std::vector<Seed> out;
  const std::size_t n = limit ? std::min(*limit, seeds.size()) : seeds.size();
  for (std::size_t i = 0; i < n; ++i)
    if (seeds[i].id % shard.count == shard.index) out.push_back(seeds[i]);
  return out;
}

}  // namespace rankemb::generate
