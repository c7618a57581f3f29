// Fuzzes the Jinja subset interpreter (text/jinja.cpp): the first input byte picks one of four
// small fixed contexts (message lists with and without a system turn, tools, the generation
// prompt on or off), the rest is the template. Parsing may fail and rendering may fail, with
// rankemb::Error only; any other exception, a crash, a hang past the render limits or a sanitizer
// report is a bug. A successful render must be valid UTF-8 (templates and contexts are) and stay
// within the output limit. Limits are tighter than the defaults so that each input stays fast
// under ASan.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rankemb/text/jinja.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace {

namespace j = rankemb::text::jinja;

const j::Value& context(std::uint8_t selector) {
  static const j::Value contexts[4] = {
      {{"messages", {{{"role", "user"}, {"content", "Hello"}}}}, {"add_generation_prompt", true}, {"bos_token", "<s>"}},
      {{"messages",
        {{{"role", "system"}, {"content", "Be brief."}},
         {{"role", "user"}, {"content", " héllo 🙂\n"}},
         {{"role", "assistant"}, {"content", "<think>\nr\n</think>\n\nHi"}}}},
       {"add_generation_prompt", false},
       {"eos_token", "</s>"},
       {"enable_thinking", false}},
      {{"messages", {{{"role", "user"}, {"content", "Weather?"}}}},
       {"tools", {{{"type", "function"}, {"function", {{"name", "w"}, {"parameters", {{"type", "object"}}}}}}}},
       {"add_generation_prompt", true}},
      j::Value::object(),
  };
  return contexts[selector % 4];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view source(reinterpret_cast<const char*>(data + 1), size - 1);
  const j::Limits limits{.max_output_bytes = 1 << 20, .max_steps = 200'000, .max_built_bytes = 16 << 20};
  try {
    j::Template t = j::Template::parse(source, "fuzz.jinja");
    std::string out = t.render(context(data[0]), limits);
    if (out.size() > limits.max_output_bytes * 2 || rankemb::unicode::find_invalid_utf8(out)) __builtin_trap();
  } catch (const rankemb::Error&) {
  }
  return 0;
}
