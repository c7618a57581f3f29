#include "rankemb/generate/seeds.h"

#include <algorithm>
#include <charconv>

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

Shard parse_shard(std::string_view text) {
  if (text.empty()) return {};
  const auto slash = text.find('/');
  Shard s;
  const auto number = [&](std::string_view part, std::size_t& v) {
    const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    return !part.empty() && ec == std::errc() && p == part.data() + part.size();
  };
  if (slash == std::string_view::npos || !number(text.substr(0, slash), s.index) ||
      !number(text.substr(slash + 1), s.count) || s.count == 0 || s.index >= s.count)
    fail(ErrorCode::Usage, "shard {}: expected i/N with 0 <= i < N, e.g. 0/4", text);
  return s;
}

std::string format_shard(const Shard& shard) { return fmt::format("{}/{}", shard.index, shard.count); }

std::vector<Seed> select_seeds(const std::vector<Seed>& seeds, std::optional<std::size_t> limit, const Shard& shard) {
  std::vector<Seed> out;
  const std::size_t n = limit ? std::min(*limit, seeds.size()) : seeds.size();
  for (std::size_t i = 0; i < n; ++i)
    if (seeds[i].id % shard.count == shard.index) out.push_back(seeds[i]);
  return out;
}

std::string fnv1a64_hex(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace rankemb::generate
