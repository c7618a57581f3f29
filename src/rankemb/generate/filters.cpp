#include "rankemb/generate/filters.h"

#include <algorithm>

namespace rankemb::generate {

std::string_view drop_reason_name(DropReason reason) {
  switch (reason) {
    case DropReason::None: return "";
    case DropReason::Newline: return "newline";
    case DropReason::Empty: return "empty";
    case DropReason::Repetition: return "repetition";
  }
  return "";
}

DropReason check_step(std::string_view output) {
  // The authors test for "\n" only; a lone '\r' is not a line break for their filter either.
  if (output.find('\n') != std::string_view::npos) return DropReason::Newline;
  if (output.empty()) return DropReason::Empty;
  return DropReason::None;
}

bool is_repetitive(std::string_view seed, const std::vector<std::string>& sentences) {
  const std::size_t n = sentences.size() + 1;  // the list the authors count over: [seed] + sentences
  if (n < 2) return false;
  const auto at = [&](std::size_t i) -> std::string_view { return i == 0 ? seed : std::string_view(sentences[i - 1]); };
  const auto count = [&](std::string_view s) {
    std::size_t c = 0;
    for (std::size_t i = 0; i < n; ++i) c += at(i) == s;
    return c;
  };
  return count(at(n - 1)) >= 3 || count(at(n - 2)) >= 3;
}

DropReason filter_chain(std::string_view seed, const std::vector<std::string>& sentences) {
  for (const auto& s : sentences)
    if (const DropReason r = check_step(s); r != DropReason::None) return r;
  return is_repetitive(seed, sentences) ? DropReason::Repetition : DropReason::None;
}

}  // namespace rankemb::generate
