// rankemb::chains owns the chain file: the JSONL that `rankemb generate` writes, one ChainRecord
// per line (record.h), its run-settings sidecar (settings.h), the training view of a chain file
// and the authors' CSV (training.h), and joining shards (merge.h). Nothing outside this folder
// parses a chain line. Needs no libtorch.
//
// This file: splitting a chain file into its lines, with the one rule for a partial last line.
//
// The rule. Records are lines that end in '\n'; blank lines are skipped. The bytes after the last
// '\n' (the tail) are a record when they parse as JSON (a file written by hand without a final
// newline); otherwise they are an unfinished record that a killed writer left behind. No reader
// turns an unfinished tail into a record or into a parse error: ChainLines says it is there, and
// each caller decides what it means for its job. Continuing the file (generate --resume) cuts it
// off and writes that record again; reporting (chains stats, training) leaves it out and says so;
// joining shards (chains merge) refuses the file, whose run has not finished.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::chains {

struct ChainLines {
  struct Line {
    std::size_t number = 0;  // 1-based line number in the file
    std::size_t offset = 0, length = 0;  // into `text`, without the '\n' (and a '\r' before it)
  };
  std::string source;       // the file name, for messages
  std::string text;         // the whole file
  std::vector<Line> lines;  // non-blank records in file order, a parsing tail included
  std::size_t complete_bytes = 0;  // bytes up to the end of the last record (the file minus an unfinished tail)
  bool tail_without_newline = false;  // the last record is a tail that parses (complete_bytes includes it)

  std::string_view view(const Line& line) const { return std::string_view(text).substr(line.offset, line.length); }
  std::string where(const Line& line) const;  // "file:line"
  // An unfinished record after the last newline.
  bool unfinished() const { return complete_bytes < text.size(); }
  std::size_t unfinished_line() const;  // its line number (when unfinished())
};

// Splits text already in memory; `source` names it in messages.
ChainLines split_chain_lines(std::string text, std::string source);
// Reads and splits a file. Throws Error(Input) naming the path when it cannot be read or is a
// directory.
ChainLines read_chain_lines(const std::filesystem::path& path);

}  // namespace rankemb::chains
