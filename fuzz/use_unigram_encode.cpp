// Fuzzes the USE-Lite unigram tokenizer: arbitrary bytes must either encode or throw
// rankemb::Error (invalid UTF-8); every id must be a vocabulary id the JS segmentation can emit
// (never a reserved control id 1..5), no two unknown ids may be adjacent, and decode must accept
// the result. Anything else (a crash, a sanitizer report, a trap) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include "fuzz_assets.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace {

const rankemb::text::Tokenizer& tokenizer() {
  static const std::unique_ptr<rankemb::text::Tokenizer> tok = [] {
    return rankemb::text::load_tokenizer(fuzz_assets_dir() / "use-lite" / "dist" / "vocab.json");
  }();
  return *tok;
}

}  // namespace

// Load before the first input: under ASan the load takes seconds, and libFuzzer counts it against
// the first input's -timeout otherwise (a false "timeout" finding on a slow machine).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tok = tokenizer();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto ids = tok.encode(text);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= tok.vocab_size()) __builtin_trap();
      if (ids[i] >= 1 && ids[i] <= 5) __builtin_trap();
      if (i > 0 && ids[i] == 0 && ids[i - 1] == 0) __builtin_trap();
    }
    (void)tok.decode(ids);
    if (tok.encode(text, {.max_length = 4}).size() > 4) __builtin_trap();
  } catch (const rankemb::Error&) {
    // Invalid UTF-8: the expected failure for arbitrary bytes.
  }
  return 0;
}
