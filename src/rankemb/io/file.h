// Small file helpers shared by every reader and writer: whole-file reads with clear errors,
// JSON parsing that names the file, and atomic writes (temp file + rename) so that a killed
// process never leaves a half-written output behind.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rankemb/util/error.h"

namespace rankemb::io {

// Whole file as bytes; throws Error(Input) naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);
// Parses a JSON file; throws Error with `code` naming the file, line and column on bad JSON.
nlohmann::json read_json(const std::filesystem::path& path, ErrorCode error_code = ErrorCode::ModelFormat);

// Writes `path` atomically: `write` fills a temporary sibling file, which is flushed and renamed
// over `path` only when `write` returns normally. On any exception the temp file is removed; a
// failed create, write or rename is Error(Other) naming the file (an output failure, exit 1).
void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);
void write_atomic(const std::filesystem::path& path, std::string_view contents);

// Creates the output directory `path` and its parents; a failure (a file in the way, no
// permission, a read-only disk) is Error(Other) naming it, like every other output failure.
void create_output_directory(const std::filesystem::path& path);

// Writes the directory `path` atomically: `fill` writes the files into a fresh sibling
// "<path>.partial", which then takes the place of `path` (a previous `path` is moved aside to
// "<path>.old" and removed after the swap). On any exception the partial directory is removed;
// filesystem errors become Error(Other) naming `path` (an output failure, exit 1).
void write_directory_atomic(const std::filesystem::path& path,
                            const std::function<void(const std::filesystem::path& partial)>& fill);

// Refuses (Error(Usage) naming both) an output path that is one of the inputs, so a careless
// command line never replaces the data it reads. Paths that do not exist yet are no input.
void check_not_an_input(const std::filesystem::path& output, const std::vector<std::filesystem::path>& inputs);

// Appends whole lines to a file (created if missing), each written and flushed in one call, so a
// killed process leaves complete lines plus at most one unfinished last line (the JSONL files:
// chain outputs, training metrics). Write errors are Error(Other) naming the file.
class LineAppender {
 public:
  explicit LineAppender(const std::filesystem::path& path);
  ~LineAppender();
  LineAppender(const LineAppender&) = delete;
  LineAppender& operator=(const LineAppender&) = delete;
  // Writes `line` and a '\n'.
  void append(std::string_view line);

 private:
  std::filesystem::path path_;
  std::FILE* file_;
};

}  // namespace rankemb::io
