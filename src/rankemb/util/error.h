// rankemb::Error: the one exception type library code throws. It carries a code (which the CLI
// maps to an exit status) and a chain of context lines added as the error crosses layers, so a
// user sees "loading model dir X: reading model.safetensors: header length 9e9 exceeds file size".
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace rankemb {

enum class ErrorCode {
  Other = 1,        // anything else
  Usage = 2,        // bad command-line arguments or options
  Input = 3,        // input data: a missing, unreadable or malformed data file or line
  ModelFormat = 4,  // a model/tokenizer file that is missing, malformed or unsupported
};

class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) { render(); }

  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // Outermost context first, as the user reads it.
  const std::vector<std::string>& context() const noexcept { return context_; }
  const char* what() const noexcept override { return what_.c_str(); }

  // Adds an outer context line ("reading config.json") and returns the error for rethrowing.
  Error& with_context(std::string ctx) {
    context_.insert(context_.begin(), std::move(ctx));
    render();
    return *this;
  }

 private:
  void render() {
    what_.clear();
    for (const auto& c : context_) what_ += c + ": ";
    what_ += message_;
  }
  ErrorCode code_;
  std::string message_;
  std::vector<std::string> context_;
  std::string what_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace rankemb

// RANKEMB_CHECK(cond, code, "fmt", args...): throws rankemb::Error(code, message) when cond is false.
#define RANKEMB_CHECK(cond, code, ...)                  \
  do {                                                  \
    if (!(cond)) ::rankemb::fail((code), __VA_ARGS__);  \
  } while (0)
