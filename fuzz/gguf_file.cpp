// Feeds arbitrary bytes to the GGUF reader as a whole file. Malformed input must end in
// rankemb::Error; anything else (crash, sanitizer report, other exception) is a bug. For an
// accepted file every small dequantizable tensor is decoded, and a tokenizer is built from its
// metadata when it declares one, then used on a short text.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rankemb/io/ggml_quants.h"
#include "rankemb/io/gguf.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace io = rankemb::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = io::GgufFile::from_bytes(std::as_bytes(std::span(data, size)), "fuzz.gguf");
    for (const auto& t : file.tensors()) {
      const io::GgmlTypeInfo& info = *io::ggml_type_info(t.type);
      if (!info.dequantizable || t.numel() > 1 << 16) continue;
      std::vector<float> out(static_cast<std::size_t>(t.numel()));
      io::dequantize(info, t.bytes, out, t.name);
    }
    if (file.find("tokenizer.ggml.model")) {
      auto tok = rankemb::text::load_gguf_tokenizer(file);
      auto ids = tok->encode("Two women, 3 dogs: <|im_start|>héllo");
      (void)tok->decode(ids);
    }
  } catch (const rankemb::Error&) {
  }
  return 0;
}
