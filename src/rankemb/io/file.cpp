#include "rankemb/io/file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "rankemb/util/error.h"

namespace rankemb::io {

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);  // a symlink loop, a permission error
  if (ec && ec != std::errc::no_such_file_or_directory)
    fail(ErrorCode::Input, "{}: cannot open file: {}", path.string(), ec.message());
  if (std::filesystem::is_directory(status)) fail(ErrorCode::Input, "{}: is a directory, not a file", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::Input, "{}: cannot open file", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(ErrorCode::Input, "{}: read error", path.string());
  return std::move(ss).str();
}

nlohmann::json read_json(const std::filesystem::path& path, ErrorCode error_code) {
  std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // Turn the byte offset into line:column for the user.
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    fail(error_code, "{}:{}:{}: invalid JSON ({})", path.string(), line, col, e.what());
  } catch (const nlohmann::json::exception& e) {
    // Not a syntax error but still bad input: a number too large for a double (out_of_range 406).
    fail(error_code, "{}: invalid JSON ({})", path.string(), e.what());
  }
}

void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  std::random_device rd;
  auto tmp = path;
  tmp += fmt::format(".tmp.{:08x}", rd());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) fail(ErrorCode::Other, "{}: cannot create file: {}", tmp.string(), std::strerror(errno));
      write(out);
      out.flush();
      if (!out) fail(ErrorCode::Other, "{}: write failed (disk full?)", tmp.string());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail(ErrorCode::Other, "{}: cannot write: {}", path.string(), ec.message());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void write_atomic(const std::filesystem::path& path, std::string_view contents) {
  write_atomic(path, [&](std::ostream& out) { out.write(contents.data(), static_cast<std::streamsize>(contents.size())); });
}

void create_output_directory(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail(ErrorCode::Other, "{}: cannot create directory: {}", path.string(), ec.message());
}

void write_directory_atomic(const std::filesystem::path& path,
                            const std::function<void(const std::filesystem::path& partial)>& fill) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path partial = path;
  partial += ".partial";
  fs::remove_all(partial, ec);
  fs::create_directories(partial, ec);
  if (ec) fail(ErrorCode::Other, "{}: cannot create directory: {}", partial.string(), ec.message());
  try {
    fill(partial);
    fs::path old = path;
    old += ".old";
    fs::remove_all(old, ec);
    if (fs::exists(path, ec)) fs::rename(path, old);
    fs::rename(partial, path);
    fs::remove_all(old, ec);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(partial, ec);
    fail(ErrorCode::Other, "writing {}: {}", path.string(), e.what());
  } catch (...) {
    fs::remove_all(partial, ec);
    throw;
  }
}

void check_not_an_input(const std::filesystem::path& output, const std::vector<std::filesystem::path>& inputs) {
  std::error_code ec;
  if (output.empty() || !std::filesystem::exists(output, ec)) return;
  for (const auto& in : inputs)
    if (!in.empty() && std::filesystem::equivalent(in, output, ec))
      fail(ErrorCode::Usage, "the output {} is also the input {}; choose another output path", output.string(), in.string());
}

LineAppender::LineAppender(const std::filesystem::path& path) : path_(path), file_(std::fopen(path.c_str(), "ab")) {
  if (!file_) fail(ErrorCode::Other, "{}: cannot open for appending: {}", path.string(), std::strerror(errno));
}

LineAppender::~LineAppender() {
  if (file_) std::fclose(file_);
}

void LineAppender::append(std::string_view line) {
  std::string whole;
  whole.reserve(line.size() + 1);
  whole.append(line).push_back('\n');
  if (std::fwrite(whole.data(), 1, whole.size(), file_) != whole.size() || std::fflush(file_) != 0)
    fail(ErrorCode::Other, "{}: write failed: {}", path_.string(), std::strerror(errno));
}

}  // namespace rankemb::io
