// Tokenizers from GGUF metadata: tiny tokenizer-only GGUFs written by gguf-py
// (scripts/regen/gguf_fixture.py), the byte-level one against Hugging Face `tokenizers` on the
// same vocabulary, the SentencePiece one against llama.cpp (scripts/regen/bpe_gguf_llamacpp.py),
// plus the refusals. The full-size checks (SmolLM2, Llama 2, Phi-3, Llama 3 against llama.cpp on
// the parity corpus, and llama.cpp's own test vectors) are in bpe_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/io/gguf.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

using rankemb::text::TokenId;

namespace {

std::filesystem::path tiny_vocab() { return rankemb::test::fixtures_dir() / "io/gguf_tiny_vocab.gguf"; }

// The fixture with one metadata string replaced by another of the same length.
std::string patched(std::string_view from, std::string_view to) {
  std::string bytes = rankemb::io::read_file(tiny_vocab());
  const auto at = bytes.find(from);
  EXPECT_NE(at, std::string::npos);
  bytes.replace(at, from.size(), to);
  return bytes;
}

std::string load_error(const std::string& bytes) {
  try {
    auto f = rankemb::io::GgufFile::from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), "v.gguf");
    (void)rankemb::text::load_gguf_tokenizer(f);
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), rankemb::ErrorCode::ModelFormat);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(GgufVocab, MatchesTokenizersOnTheSameVocabulary) {
  auto tok = rankemb::text::load_tokenizer(tiny_vocab());  // found by its magic
  EXPECT_EQ(tok->kind(), "byte-bpe");
  EXPECT_EQ(tok->vocab_size(), 293u);
  EXPECT_EQ(tok->special_tokens().bos, 1);
  EXPECT_EQ(tok->special_tokens().eos, 2);
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_FALSE(tok->is_special(*tok->token_to_id("<tool>")));  // user-defined: matched, not special
  const auto expected = rankemb::io::read_json(rankemb::test::fixtures_dir() / "io/gguf_tiny_vocab.expected.json");
  ASSERT_GE(expected.size(), 5u);
  for (const auto& e : expected) {
    const std::string text = e["text"];
    SCOPED_TRACE(text);
    const auto want = e["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok->encode(text), want);
    EXPECT_EQ(tok->decode(want, true), e["decoded"].get<std::string>());
  }
}

// SentencePiece (tokenizer.ggml.model "llama") against llama.cpp on a vocabulary small enough to
// work by hand: "dabc" has "ab" and "bc" at equal scores (the leftmost merges: ▁ d ab c), "▁ab"
// exists only through "▁a" + "b", "é" is not a piece (its two bytes) but "ét" is, and llama.cpp
// merges it all the same ("aét" -> ▁a ét), text after the user-defined <tool> gets its own "▁".
TEST(GgufVocab, SentencePieceMatchesLlamaCppOnATinyVocabulary) {
  const auto dir = rankemb::test::fixtures_dir() / "io";
  auto tok = rankemb::text::load_tokenizer(dir / "gguf_tiny_spm_vocab.gguf");
  EXPECT_EQ(tok->kind(), "sp-bpe");
  EXPECT_EQ(tok->vocab_size(), 273u);
  EXPECT_EQ(tok->special_tokens().unk, 0);
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_FALSE(tok->is_special(*tok->token_to_id("<tool>")));
  const auto expected = rankemb::io::read_json(dir / "gguf_tiny_spm_vocab.expected.json");
  ASSERT_GE(expected.size(), 10u);
  for (const auto& e : expected) {
    const std::string text = e["text"];
    SCOPED_TRACE(text);
    const auto want = e["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(tok->encode(text), want);  // BOS first: the kind's default, as in llama.cpp
    EXPECT_EQ(tok->decode(want, true), e["decoded"].get<std::string>());
  }
  const auto scoreless = rankemb::io::read_file(dir / "gguf_tiny_spm_vocab.gguf");
  std::string bytes = scoreless;
  bytes.replace(bytes.find("tokenizer.ggml.scores"), 21, "tokenizer.ggml.scorez");
  EXPECT_NE(load_error(bytes).find("needs tokenizer.ggml.scores"), std::string::npos);
}

TEST(GgufVocab, RefusesWhatItCannotBuildNamingTheKey) {
  EXPECT_NE(load_error(patched("smollm", "smolxx")).find("tokenizer.ggml.pre \"smolxx\" is not supported"), std::string::npos);
  EXPECT_NE(load_error(patched("gpt2", "gptx")).find("tokenizer.ggml.model \"gptx\" is not supported"), std::string::npos);
  // A duplicate token: the first token ("<|endoftext|>") renamed to the second's text is impossible
  // at equal length, so rename a merge-free single character instead: "!" (id 3) -> "\"" (id 4).
  std::string bytes = rankemb::io::read_file(tiny_vocab());
  const std::string one = std::string("\x01\0\0\0\0\0\0\0!", 9);
  const auto at = bytes.find(one);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 8] = '"';
  EXPECT_NE(load_error(bytes).find("repeats an earlier token"), std::string::npos);
}
