// Fuzzes the tokenizer file readers (text/): tokenizer.json (WordPiece, BPE, with normalizers,
// pre-tokenizers, post-processors, added tokens), the USE-Lite vocab.json array and BERT's
// vocab.txt. The first input byte picks the file name the loader sees, the rest is the file.
// Only rankemb::Error is an expected failure; a tokenizer that loads must encode a fixed text to
// ids inside its vocabulary and decode them. Seeds: fuzz/seeds/tokenizer_files/ (hand-written,
// small) and scripts/defence.sh.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace {

namespace fs = std::filesystem;

// One scratch directory per fuzzing process (libFuzzer may run several in parallel).
const fs::path& scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("rankemb_fuzz_tok_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kNames[] = {"tokenizer.json", "vocab.json", "vocab.txt"};
  const fs::path file = scratch() / kNames[data[0] % 3];
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
    if (!out) std::abort();
  }
  try {
    const auto tok = rankemb::text::load_tokenizer(file);
    const auto ids = tok->encode("A man is playing a guitar. Ünïcödé 123 [CLS]", {.add_special_tokens = true});
    for (auto id : ids)
      if (id < 0 || static_cast<std::size_t>(id) >= tok->vocab_size()) __builtin_trap();
    (void)tok->decode(ids, true);
    (void)tok->decode(ids, false);
  } catch (const rankemb::Error&) {
  }
  fs::remove(file);
  return 0;
}
