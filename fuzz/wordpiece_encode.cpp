// Fuzzes WordPiece encode() and decode() with the all-MiniLM-L6-v2 tokenizer.json: any bytes may
// come in; only rankemb::Error (invalid UTF-8) is an expected failure. The asset comes from
// $RANKEMB_CACHE_DIR/assets/... or the repo's .cache/assets/....
#include <algorithm>
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
    return rankemb::text::load_tokenizer(fuzz_assets_dir() / "all-MiniLM-L6-v2" / "tokenizer.json");
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
    const bool specials = (size & 1) != 0;
    const std::size_t max_length = size % 64;
    auto ids = tok.encode(text, {.add_special_tokens = specials, .max_length = max_length});
    for (auto id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= tok.vocab_size()) __builtin_trap();
    }
    // Specials are never cut (a limit below their count is an Error), so the limit holds exactly.
    if (max_length > 0 && ids.size() > max_length) __builtin_trap();
    (void)tok.decode(ids, true);
    (void)tok.decode(ids, false);
  } catch (const rankemb::Error&) {
    // Invalid UTF-8 is rejected with Error(Input); that is the expected outcome for such input.
  }
  return 0;
}
