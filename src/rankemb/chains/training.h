// Ranking chains as training input: the JSONL that `rankemb generate` writes and the authors'
// released CSV (hly1998/RankingSentenceGeneration, generation/sentences_merge.py: one column
// `list_sent` holding the Python repr of a list of sentences, read back by train.py with
// ast.literal_eval). The training view of a chain is its sentences in order, seed first.
//
// JSONL: one chain per line, {"id": ..., "seed": "...", "sentences": ["...", ...], "kept": true,
// "drop_reason": ...}; the training chain is [seed] + sentences. Lines with "kept": false were
// dropped by the generator's filters: skipped and counted. Lines are split by chain_file.h, whose
// rule applies: blank lines are ignored, an unfinished last line is left out and listed below.
//
// Malformed lines (bad JSON, wrong types, a bad list literal, a chain shorter than
// min_sentences, invalid UTF-8) are skipped and listed as "file:line: reason", or throw
// Error(Input) at the first one in strict mode. A file with no usable chain is Error(Input).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::chains {

struct Chain {
  std::string id;                      // JSONL "id" as text (a number is printed), CSV: the data row index
  std::vector<std::string> sentences;  // seed first, then the generated sentences in chain order
  std::string where;                   // "file:line" of the record, for messages
};

struct ChainFile {
  std::vector<Chain> chains;           // usable chains in file order
  std::size_t n_dropped = 0;           // JSONL lines with "kept": false
  std::vector<std::string> malformed;  // "file:line: reason" for each skipped record
};

enum class ChainFormat {
  Auto,   // by extension: .csv / .tsv -> Csv, anything else -> Jsonl
  Jsonl,  // rankemb generate output
  Csv,    // the authors' list_sent CSV (tab-separated when the extension is .tsv)
};

struct ChainReadOptions {
  ChainFormat format = ChainFormat::Auto;
  bool strict = false;            // throw Error(Input) at the first malformed record instead of skipping it
  std::size_t min_sentences = 2;  // shorter chains are malformed: a ranking needs two sentences
};

// Reads a chain file; throws Error(Input) naming the file when it cannot be read, when strict and
// a record is malformed, or when no usable chain remains (the message counts dropped/malformed).
ChainFile read_chains(const std::filesystem::path& path, const ChainReadOptions& options = {});

// The same on text already in memory; `source` names it in messages ("file" of "file:line").
ChainFile parse_chains_jsonl(std::string_view text, std::string_view source, const ChainReadOptions& options = {});
ChainFile parse_chains_csv(std::string_view text, std::string_view source, const ChainReadOptions& options = {},
                           char delimiter = ',');

// What ast.literal_eval accepts for a list of str: '[' string literals separated by commas ']',
// each literal single-, double- or triple-quoted, optionally r/u-prefixed, adjacent literals
// concatenated, with Python's escapes (\n, \t, \\, \', \", \xhh, \uXXXX, \UXXXXXXXX, octal,
// backslash-newline; unknown escapes keep the backslash). Throws Error(Input) "<reason> at
// offset N" on anything else (bytes/f-strings, \N{...} names, surrogate code points, invalid
// UTF-8 or code points outside Unicode). Result strings are UTF-8.
std::vector<std::string> parse_python_string_list(std::string_view literal);

}  // namespace rankemb::chains
