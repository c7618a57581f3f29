#include "rankemb/chains/chain_file.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::chains {

namespace fs = std::filesystem;

std::string ChainLines::where(const Line& line) const { return fmt::format("{}:{}", source, line.number); }

std::size_t ChainLines::unfinished_line() const {
  return static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(complete_bytes), '\n')) + 1;
}

namespace {
bool blank(std::string_view row) { return row.find_first_not_of(" \t\r") == std::string_view::npos; }
}  // namespace

ChainLines split_chain_lines(std::string text, std::string source) {
  ChainLines out;
  out.source = std::move(source);
  out.text = std::move(text);
  const std::string_view all(out.text);
  std::size_t pos = 0, number = 0;
  while (pos < all.size()) {
    const std::size_t nl = all.find('\n', pos);
    const bool tail = nl == std::string_view::npos;
    const std::size_t end = tail ? all.size() : nl;
    std::string_view row = all.substr(pos, end - pos);
    ++number;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (tail) {
      // The rule of chain_file.h: a tail is a record only when it parses.
      if (blank(row) || nlohmann::json::accept(row)) {
        if (!blank(row)) out.lines.push_back({number, pos, row.size()});
        out.tail_without_newline = !blank(row);
        out.complete_bytes = all.size();
      }
      return out;
    }
    if (!blank(row)) out.lines.push_back({number, pos, row.size()});
    pos = nl + 1;
    out.complete_bytes = pos;
  }
  return out;
}

ChainLines read_chain_lines(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(ErrorCode::Input, "{}: is a directory, not a chain file", path.string());
  return split_chain_lines(io::read_file(path), path.string());
}

}  // namespace rankemb::chains
