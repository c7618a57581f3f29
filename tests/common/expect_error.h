// expect_error(f, code, needles): runs `f` and expects a rankemb::Error with `code` whose
// message contains every needle (file names, fields, line numbers). Shared by all test areas.
#pragma once

#include <concepts>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "rankemb/util/error.h"

namespace rankemb::test {

inline void expect_error(const std::function<void()>& f, ErrorCode code, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing " << (needles.empty() ? std::string() : needles.front());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// One needle; a template so that a braced list like {"a"} always picks the vector overload.
template <typename S>
  requires std::convertible_to<const S&, std::string_view>
void expect_error(const std::function<void()>& f, ErrorCode code, const S& needle) {
  expect_error(f, code, std::vector<std::string>{std::string(std::string_view(needle))});
}

}  // namespace rankemb::test
