#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <iostream>

#include "cli.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

LineReader::LineReader(const std::string& path) {
  if (path.empty() || path == "-") {
    in_ = &std::cin;
    name_ = "<stdin>";
  } else {
    auto f = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*f) fail(ErrorCode::Input, "{}: cannot open file", path);
    in_ = f.get();
    owned_ = std::move(f);
    name_ = path;
  }
}

bool LineReader::next(std::string& line) {
  if (!std::getline(*in_, line)) {
    if (in_->bad()) fail(ErrorCode::Input, "{}: read error after line {}", name_, line_no_);
    return false;
  }
  ++line_no_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

namespace {
std::string& command_line_storage() {
  static std::string line;
  return line;
}
std::vector<std::string>& command_args_storage() {
  static std::vector<std::string> args;
  return args;
}

// POSIX shell quoting: an argument of only safe characters stays as is, others go in '...'.
std::string shell_quote(std::string_view arg) {
  const bool safe = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                          "0123456789_-+=./,:@%") == std::string_view::npos;
  if (safe) return std::string(arg);
  std::string q = "'";
  for (const char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

void set_command_line(int argc, const char* const* argv) {
  std::string line = "rankemb";  // not argv[0]: a build path says nothing to a reader
  for (int i = 1; i < argc; ++i) line += " " + shell_quote(argv[i]);
  command_line_storage() = std::move(line);
  command_args_storage().assign(argv + 1, argv + argc);
}

const std::vector<std::string>& command_args() { return command_args_storage(); }

const std::string& command_line() { return command_line_storage(); }

std::filesystem::path source_checkout() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    if (std::filesystem::exists(dir / "scripts" / "fetch-assets.sh") && std::filesystem::exists(dir / "CMakeLists.txt")) return dir;
  }
  return {};
}

std::filesystem::path default_cache_dir() {
  if (const char* env = std::getenv("RANKEMB_CACHE_DIR"); env && *env) return env;
  if (auto repo = source_checkout(); !repo.empty()) return repo / ".cache";
  return ".cache";
}

std::filesystem::path default_vectors_dir(const std::filesystem::path& cache) { return cache / "models" / "glove-100d"; }

std::filesystem::path default_llm(const std::filesystem::path& cache) {
  return cache / "assets" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::filesystem::path default_teacher(const std::filesystem::path& cache) { return cache / "assets" / "all-mpnet-base-v2"; }

std::unique_ptr<Progress> make_progress() {
  if (log::level() >= log::Level::Warn) return std::make_unique<TerminalProgress>();
  return std::make_unique<NullProgress>();
}

namespace {

// A check that the option's text is a finite number v with lo < v (lo <= v when lo_inclusive) and
// v <= hi; `rule` says the allowed values in the message.
CLI::Validator number_check(double lo, bool lo_inclusive, double hi, std::string rule, std::string name) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size()) return fmt::format("'{}' is not a number", text);
        const bool above_lo = lo_inclusive ? v >= lo : v > lo;
        if (!std::isfinite(v) || !above_lo || v > hi) return fmt::format("must be {}, got {}", rule, text);
        return {};
      },
      name);
}

}  // namespace

CLI::Validator positive() {
  return number_check(0, false, std::numeric_limits<double>::max(), "positive", "POSITIVE");
}

CLI::Validator non_negative() {
  return number_check(0, true, std::numeric_limits<double>::max(), "zero or more", "NONNEGATIVE");
}

CLI::Validator in_range(double lo, double hi) {
  return number_check(lo, true, hi, fmt::format("between {} and {}", lo, hi), fmt::format("[{} - {}]", lo, hi));
}

Dtype parse_dtype_option(const std::string& name, std::string_view option) {
  const Dtype dtype = parse_dtype(name, option);
  if (dtype == Dtype::BFloat16 && !cpu_has_fast_bfloat16())
    log::warn("{} bfloat16: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so it is emulated and much slower than "
              "float32",
              option);
  return dtype;
}

CLI::Option* add_dtype_option(CLI::App* cmd, Dtype& dtype, const std::string& help) {
  return cmd
      ->add_option_function<std::string>("--dtype", [&dtype](const std::string& name) { dtype = parse_dtype_option(name, "--dtype"); }, help)
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->default_str(std::string(dtype_name(dtype)));
}

CLI::Option* add_int8_option(CLI::App* cmd, bool& int8) {
  return cmd->add_flag("--int8", int8,
                       "Inference with the linear layers in int8 (float32 CPU encoders of the BERT family and MPNet): "
                       "all-MiniLM-L6-v2 encodes 1.25-1.5x faster than in float32 (1.5-1.6x ONNX Runtime float32), its vectors within "
                       "cosine 0.98 of float32 (README, Serving and search)");
}

std::string precision_name(Dtype dtype, bool int8) { return int8 ? "int8" : std::string(dtype_name(dtype)); }

CLI::Option* add_device_option(CLI::App* cmd, Device& device) {
  return cmd
      ->add_option_function<std::string>(
          "--device", [&device](const std::string& name) { device = parse_device(name, "--device"); },
          "Where the model runs: cpu, cuda or cuda:N (CUDA needs a libtorch built with it; Debian's is CPU-only)")
      ->default_str(device_name(device));
}

}  // namespace rankemb::cli
