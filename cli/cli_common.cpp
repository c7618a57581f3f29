#include <fstream>
#include <iostream>

#include "cli.h"
#include "rankemb/util/error.h"

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

void not_implemented_yet(const std::string& verb, int issue) {
  fail(ErrorCode::Other, "'rankemb {}' is planned but not implemented yet (tracked in issue {})", verb, issue);
}

}  // namespace rankemb::cli
