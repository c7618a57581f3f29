#include "rankemb/generate/sentence_generator.h"

namespace rankemb::generate {

std::string strip_generated(std::string_view text) {
  auto is_strippable = [](char c) { return c == '`' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  std::size_t begin = 0, end = text.size();
  while (begin < end && is_strippable(text[begin])) ++begin;
  while (end > begin && is_strippable(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

}  // namespace rankemb::generate
