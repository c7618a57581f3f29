// Fuzzes BPE encode() and decode() with the four real tokenizers (GPT-2, Llama-3, Qwen3,
// TinyStories); the first input byte picks one, the rest is the text. Only rankemb::Error (invalid
// UTF-8) is an expected failure. Byte-level tokenizers without a normalizer must also round-trip:
// decode(encode(text), keep specials) == text. Assets come from $RANKEMB_CACHE_DIR/assets (or the
// repo's .cache/assets) and ../shared/models next to the repo.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include "fuzz_assets.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace {

namespace fs = std::filesystem;

struct Loaded {
  std::unique_ptr<rankemb::text::Tokenizer> tok;
  bool round_trips;  // byte-level without a normalizer: decoding gives back the exact text
};

const std::array<Loaded, 4>& tokenizers() {
  static const std::array<Loaded, 4> all = [] {
    fs::path assets = fuzz_assets_dir();
    fs::path shared = fs::path(RANKEMB_SOURCE_DIR).parent_path() / "shared" / "models";
    return std::array<Loaded, 4>{
        Loaded{rankemb::text::load_tokenizer(assets / "gpt2-bpe"), true},
        Loaded{rankemb::text::load_tokenizer(assets / "llama3-tokenizer" / "models"), true},
        Loaded{rankemb::text::load_tokenizer(assets / "qwen3-tokenizer" / "models"), false},
        Loaded{rankemb::text::load_tokenizer(shared / "tinystories-656k"), false},
    };
  }();
  return all;
}

}  // namespace

// Load before the first input: under ASan the load takes seconds, and libFuzzer counts it against
// the first input's -timeout otherwise (a false "timeout" finding on a slow machine).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Loaded& l = tokenizers()[data[0] % 4];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    auto ids = l.tok->encode(text, {.add_special_tokens = (data[0] & 4) != 0});
    for (auto id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= l.tok->vocab_size()) __builtin_trap();
    }
    (void)l.tok->decode(ids, true);
    std::string back = l.tok->decode(ids, false);
    if (rankemb::unicode::find_invalid_utf8(back)) __builtin_trap();
    if (l.round_trips && (data[0] & 4) == 0 && back != text) __builtin_trap();
  } catch (const rankemb::Error&) {
    // Invalid UTF-8 is rejected with Error(Input); that is the expected outcome for such input.
  }
  return 0;
}
