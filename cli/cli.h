// The CLI's shared pieces: each verb lives in cli/cmd_<verb>.cpp and registers one CLI11
// subcommand through a register_* function listed in main.cpp's command table. A command's
// callback validates its arguments, calls the library and writes results; all real work is in
// librankemb so tests and the server reuse it.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "rankemb/util/device.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::cli {

// Sets the exit status of the command that ran.
using ExitCode = int;

void register_tokenize(CLI::App& root, ExitCode& rc);
void register_encode(CLI::App& root, ExitCode& rc);
void register_eval(CLI::App& root, ExitCode& rc);
void register_train(CLI::App& root, ExitCode& rc);
void register_generate(CLI::App& root, ExitCode& rc);
void register_chains(CLI::App& root, ExitCode& rc);
void register_convert(CLI::App& root, ExitCode& rc);
void register_demo(CLI::App& root, ExitCode& rc);
void register_info(CLI::App& root, ExitCode& rc);
void register_serve(CLI::App& root, ExitCode& rc);
void register_index(CLI::App& root, ExitCode& rc);
void register_search(CLI::App& root, ExitCode& rc);
void register_report(CLI::App& root, ExitCode& rc);

// Input lines from a file or, for "-" or an empty path, stdin. Throws Error(Input) naming the
// path when it cannot be opened.
class LineReader {
 public:
  explicit LineReader(const std::string& path);
  // Next line without its trailing "\n" / "\r\n"; false at end of input.
  bool next(std::string& line);
  std::size_t line_number() const { return line_no_; }
  const std::string& name() const { return name_; }

 private:
  std::unique_ptr<std::istream> owned_;
  std::istream* in_;
  std::string name_;
  std::size_t line_no_ = 0;
};

// The command line as typed (arguments shell-quoted where needed), for records of what made a
// file; set once by main().
void set_command_line(int argc, const char* const* argv);
const std::string& command_line();
// The arguments after the program name, as given (a launcher restarts the command with them).
const std::vector<std::string>& command_args();

// The checkout this binary was built in (<repo>/build*/bin/rankemb), where scripts/ and the asset
// cache live; empty when the binary was moved elsewhere.
std::filesystem::path source_checkout();
// The asset cache: $RANKEMB_CACHE_DIR, else <checkout>/.cache, else ./.cache.
std::filesystem::path default_cache_dir();
// GloVe vectors for the lexical backend, as scripts/convert-assets.sh writes them into `cache`.
std::filesystem::path default_vectors_dir(const std::filesystem::path& cache = default_cache_dir());
// The embedded LLM of stage 1 (SmolLM2-135M-Instruct GGUF, fetched by scripts/fetch-assets.sh).
std::filesystem::path default_llm(const std::filesystem::path& cache = default_cache_dir());
// The embedded teacher (all-mpnet-base-v2): the demo's teacher and the small-model loop's drift guard.
std::filesystem::path default_teacher(const std::filesystem::path& cache = default_cache_dir());

// The progress display of a command: a terminal bar unless -q lowered the log level.
std::unique_ptr<Progress> make_progress();

// Number checks for options, with plain messages ("'abc' is not a number", "must be positive,
// got -1", "must be between 1 and 4096, got 0") instead of CLI11's stock validators, which print
// the double range as a 300-digit number and call a word "not in range".
CLI::Validator positive();
CLI::Validator non_negative();
CLI::Validator in_range(double lo, double hi);

// --dtype on `cmd`, parsed into `dtype` (float32 or bfloat16; util/types.h), default shown.
// parse_dtype, with a warning when bfloat16 is asked of a CPU that would emulate it.
Dtype parse_dtype_option(const std::string& name, std::string_view option);
CLI::Option* add_dtype_option(CLI::App* cmd, Dtype& dtype, const std::string& help);
// --int8 on `cmd`: an encoder's linear layers in int8 (models/kernels/int8_linear.h).
CLI::Option* add_int8_option(CLI::App* cmd, bool& int8);
// What a log line or /info calls the precision: the dtype, or "int8" (float32 around int8 products).
std::string precision_name(Dtype dtype, bool int8);
// --device on `cmd`, parsed into `device` (cpu, cuda, cuda:N; util/device.h), default shown.
CLI::Option* add_device_option(CLI::App* cmd, Device& device);

}  // namespace rankemb::cli
