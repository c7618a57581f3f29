// The tokenizer parity corpus (tests/fixtures/text/corpus.jsonl, written by
// scripts/regen/corpus.py): references into the data dir plus literal hard cases, resolved to
// texts in fixture order. Expected-id fixtures have one line per corpus entry, in the same order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rankemb::test {

struct CorpusEntry {
  std::string text;
  std::string where;  // "stsb/stsb-test.tsv:12:5" or "hard case #3", for failure messages
};

const std::vector<CorpusEntry>& parity_corpus();

// Reads a JSONL fixture, skipping blank lines and lines starting with '#' (the header).
std::vector<nlohmann::json> read_jsonl_fixture(const std::filesystem::path& path);

}  // namespace rankemb::test
