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

#include "rankemb/chains/settings.h"
#include "rankemb/util/types.h"

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

// The longest seed accepted, in bytes. A seed is one sentence; the backends' work per step grows
// faster than linearly with its length (the lexical backend scores every edit of every word), so
// a runaway line (a file without newlines, a pasted document) is refused up front instead of
// exhausting memory mid-run.
constexpr std::size_t kMaxSeedBytes = 2048;

// Parses seed text. Throws Error(Input) "<source>:<line>: ..." on invalid UTF-8, a tab inside a
// seed (a TSV file passed by mistake), a stray carriage return inside a line or a seed longer
// than kMaxSeedBytes.
std::vector<Seed> parse_seeds(std::string_view text, std::string_view source);
// Reads and parses a seed file; Error(Input) naming the file when it cannot be read or has no seed.
SeedFile read_seeds(const std::filesystem::path& path);

// Shards are recorded in the chain file's settings sidecar, which owns them (chains/settings.h).
using chains::Shard;
using chains::format_shard;
using chains::parse_shard;

// The first `limit` seeds (all when nullopt), then those with id % N == i. The limit applies
// before sharding so that shards 0/N..N-1/N of a limited run together hold that run's seeds.
std::vector<Seed> select_seeds(const std::vector<Seed>& seeds, std::optional<std::size_t> limit, const Shard& shard);

using rankemb::fnv1a64_hex;  // util/types.h

}  // namespace rankemb::generate
