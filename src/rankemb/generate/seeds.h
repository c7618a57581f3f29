// Seed sentences for `rankemb generate`: one per line; a seed's id is its 0-based line index in
// the file (blank lines are skipped but keep their index, so ids never shift when a file is
// re-read), plus the selections --limit N and --shard i/N. Needs no libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::generate {

struct Seed {
  std::uint64_t id = 0;  // 0-based line index in the seed file
  std::string text;      // the line without surrounding whitespace (the authors strip() each line)
};

struct SeedFile {
  std::vector<Seed> seeds;  // non-blank lines in file order
  std::string name;         // file name without directories (recorded in the run's meta)
  std::uint64_t size = 0;   // bytes
  std::string hash;         // FNV-1a 64 of the bytes, 16 hex digits (a change detector, not security)
};

// Parses seed text. Throws Error(Input) "<source>:<line>: ..." on invalid UTF-8, a tab inside a
// seed (a TSV file passed by mistake) or a stray carriage return inside a line.
std::vector<Seed> parse_seeds(std::string_view text, std::string_view source);
// Reads and parses a seed file; Error(Input) naming the file when it cannot be read or has no seed.
SeedFile read_seeds(const std::filesystem::path& path);

struct Shard {
  std::size_t index = 0;  // i in i/N
  std::size_t count = 1;  // N
  bool operator==(const Shard&) const = default;
};
// "i/N" with 0 <= i < N; an empty string is 0/1. Throws Error(Usage) otherwise.
Shard parse_shard(std::string_view text);
std::string format_shard(const Shard& shard);  // "i/N"

// The first `limit` seeds (all when nullopt), then those with id % N == i. The limit applies
// before sharding so that shards 0/N..N-1/N of a limited run together hold that run's seeds.
std::vector<Seed> select_seeds(const std::vector<Seed>& seeds, std::optional<std::size_t> limit, const Shard& shard);

// FNV-1a 64 as 16 lowercase hex digits.
std::string fnv1a64_hex(std::string_view bytes);

}  // namespace rankemb::generate
