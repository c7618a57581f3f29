// WordPiece parity with Hugging Face `tokenizers` over the whole corpus (fixtures written by
// scripts/regen/wordpiece.py), plus the error paths of both loaders.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "common/expect_error.h"
#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/text/wordpiece.h"
#include "rankemb/util/error.h"

namespace fs = std::filesystem;
using rankemb::Error;
using rankemb::ErrorCode;
using rankemb::text::TokenId;
using rankemb::text::Tokenizer;

namespace {

using rankemb::test::expect_error;

std::string show(const std::vector<TokenId>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

// Compares encode() (and decode() where the fixture has "decoded") for every corpus entry.
void expect_parity(const Tokenizer& tok, const std::string& fixture, std::size_t max_length = 0) {
  const auto& corpus = rankemb::test::parity_corpus();
  auto rows = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "text" / fixture);
  const std::size_t n = corpus.size();
  ASSERT_EQ(rows.size(), n) << fixture << " does not match the corpus; rerun scripts/regen/wordpiece.py";
  std::size_t id_mismatches = 0, text_mismatches = 0, truncated = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& entry = corpus[i];
    auto want = rows[i]["ids"].get<std::vector<TokenId>>();
    auto got = tok.encode(entry.text, {.add_special_tokens = true, .max_length = max_length});
    if (max_length > 0 && want.size() == max_length) ++truncated;
    if (got != want && ++id_mismatches <= 5) {
      ADD_FAILURE() << fixture << " " << entry.where << " text=" << nlohmann::json(entry.text).dump()
                    << "\n  expected " << show(want) << "\n  got      " << show(got);
    }
    if (rows[i].contains("decoded")) {
      auto want_text = rows[i]["decoded"].get<std::string>();
      auto got_text = tok.decode(want, true);
      if (got_text != want_text && ++text_mismatches <= 5) {
        ADD_FAILURE() << fixture << " decode " << entry.where << "\n  expected " << nlohmann::json(want_text).dump()
                      << "\n  got      " << nlohmann::json(got_text).dump();
      }
    }
  }
  EXPECT_EQ(id_mismatches, 0u) << "of " << n << " entries in " << fixture;
  EXPECT_EQ(text_mismatches, 0u) << "decode mismatches of " << n << " entries in " << fixture;
  // The truncation fixture is only a test of truncation if some entries hit the limit.
  if (max_length > 0) {
    EXPECT_GT(truncated, 50u) << fixture;
  }
}

const Tokenizer& minilm() {
  static auto tok = rankemb::text::load_tokenizer(rankemb::test::asset("all-MiniLM-L6-v2/tokenizer.json"));
  return *tok;
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

}  // namespace

TEST(WordPiece, MiniLmTokenizerJsonMatchesHuggingFace) {
  EXPECT_EQ(minilm().kind(), "wordpiece");
  expect_parity(minilm(), "wordpiece_minilm.expected.jsonl");
}

TEST(WordPiece, MiniLmTruncationMatchesHuggingFace) {
  expect_parity(minilm(), "wordpiece_minilm_trunc32.expected.jsonl", 32);
}

TEST(WordPiece, UncasedVocabTxtMatchesHuggingFace) {
  auto tok = rankemb::text::load_tokenizer(rankemb::test::asset("bert-vocab/vocab.txt"));
  expect_parity(*tok, "wordpiece_uncased.expected.jsonl");
}

TEST(WordPiece, CasedVocabTxtMatchesHuggingFace) {
  // A model directory whose tokenizer_config.json turns lowercasing off.
  rankemb::test::TempDir tmp("wordpiece_cased");
  const fs::path dir = tmp.path();
  fs::copy_file(rankemb::test::asset("bert-vocab/vocab.txt"), dir / "vocab.txt");
  write_text(dir / "tokenizer_config.json", R"({"do_lower_case": false})");
  auto tok = rankemb::text::load_tokenizer(dir);
  expect_parity(*tok, "wordpiece_cased.expected.jsonl");
}

TEST(WordPiece, SpecialsAndTemplate) {
  const auto& tok = minilm();
  const auto& s = tok.special_tokens();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.unk, 100);
  EXPECT_EQ(s.cls, 101);
  EXPECT_EQ(s.sep, 102);
  EXPECT_EQ(s.mask, 103);
  EXPECT_EQ(tok.post_template().prefix, std::vector<TokenId>{101});
  EXPECT_EQ(tok.post_template().suffix, std::vector<TokenId>{102});
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.token_to_id("##ing"), 2075);
  EXPECT_EQ(tok.id_to_token(2075), "##ing");
  // Specials typed in the text are matched verbatim, not lowercased and split.
  EXPECT_EQ(tok.encode("a [MASK] b", {.add_special_tokens = false}), (std::vector<TokenId>{1037, 103, 1038}));
  // max_length counts the specials; with specials off it cuts the body only.
  EXPECT_EQ(tok.encode("a b c d", {.max_length = 4}), (std::vector<TokenId>{101, 1037, 1038, 102}));
  EXPECT_EQ(tok.encode("a b c d", {.add_special_tokens = false, .max_length = 2}), (std::vector<TokenId>{1037, 1038}));
  // A limit of exactly the specials leaves no body; below it is a usage error (as HF tokenizers).
  EXPECT_EQ(tok.encode("a b c d", {.max_length = 2}), (std::vector<TokenId>{101, 102}));
  EXPECT_THROW((void)tok.encode("a b c d", {.max_length = 1}), rankemb::Error);
  EXPECT_EQ(tok.decode(std::vector<TokenId>{101, 1037, 103, 102}, false), "[CLS] a [MASK] [SEP]");
}

TEST(WordPiece, WordRules) {
  const auto& tok = minilm();
  auto body = [&](std::string_view t) { return tok.encode(t, {.add_special_tokens = false}); };
  // A word over max_input_chars_per_word (100) is one [UNK]; exactly 100 is segmented.
  EXPECT_EQ(body(std::string(101, 'a')), std::vector<TokenId>{100});
  EXPECT_GT(body(std::string(100, 'a')).size(), 1u);
  // A word with one unmatchable piece is a single [UNK], not a partial segmentation.
  EXPECT_EQ(body("abc\u2603def"), std::vector<TokenId>{100});
  EXPECT_EQ(body("unaffable"), (std::vector<TokenId>{14477, 20961, 3468}));  // un ##aff ##able
}

TEST(WordPiece, PreprocessorNormalizesLikeBert) {
  rankemb::text::BertPreprocessor pre({});
  EXPECT_EQ(pre.normalize("Cr\u00e8me\tBr\u00fbl\u00e9e\x07"), "creme brulee");
  EXPECT_EQ(pre.normalize("\u4e2d\u6587"), " \u4e2d  \u6587 ");
  EXPECT_EQ(pre.normalize("\u0130"), "i");  // NFD strips the dot above before lowercasing
  EXPECT_EQ(pre.words("Hello, world! $5"), (std::vector<std::string>{"hello", ",", "world", "!", "$", "5"}));
  rankemb::text::BertPreprocessor lower_only({.strip_accents = false});
  EXPECT_EQ(lower_only.normalize("\u0130\u00c9"), "i\u0307\u00e9");
}

TEST(WordPiece, InvalidUtf8IsAnInputError) {
  expect_error([] { minilm().encode("ok \xff bad"); }, ErrorCode::Input, "byte 3");
  expect_error([] { minilm().encode("\xe4\xb8"); }, ErrorCode::Input, "invalid UTF-8");
}

TEST(WordPiece, UnknownIdInDecodeIsAnInputError) {
  expect_error([] { minilm().decode(std::vector<TokenId>{101, 999999}); }, ErrorCode::Input, "999999");
  expect_error([] { minilm().decode(std::vector<TokenId>{-1}); }, ErrorCode::Input, "-1");
}

TEST(WordPiece, MissingVocabTxtIsAModelFormatError) {
  rankemb::test::TempDir tmp("wordpiece_missing");
  const fs::path dir = tmp.path();
  expect_error([&] { rankemb::text::load_tokenizer(dir / "vocab.txt"); }, ErrorCode::ModelFormat, "vocab.txt");
  // The loader itself, as load_tokenizer() calls it for a directory holding vocab.txt.
  expect_error([&] { rankemb::text::detail::make_wordpiece_vocab_txt(dir / "vocab.txt", true); }, ErrorCode::ModelFormat,
               (dir / "vocab.txt").string());
}

TEST(WordPiece, VocabTxtWithoutUnkIsAModelFormatError) {
  rankemb::test::TempDir tmp("wordpiece_nounk");
  const fs::path dir = tmp.path();
  write_text(dir / "vocab.txt", "[CLS]\n[SEP]\nhello\n");
  expect_error([&] { rankemb::text::load_tokenizer(dir / "vocab.txt"); }, ErrorCode::ModelFormat, "[UNK]");
}

TEST(WordPiece, BadTokenizerJsonIsAModelFormatError) {
  rankemb::test::TempDir tmp("wordpiece_badjson");
  const fs::path dir = tmp.path();
  auto base = nlohmann::json::parse(R"({
    "normalizer": {"type": "BertNormalizer", "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "vocab": {"[UNK]": 0, "a": 1}}})");
  auto check = [&](const std::string& name, nlohmann::json tj, const std::string& needle) {
    fs::path file = dir / (name + ".json");
    write_text(file, tj.dump());
    expect_error([&] { rankemb::text::load_tokenizer(file); }, ErrorCode::ModelFormat, needle);
    expect_error([&] { rankemb::text::load_tokenizer(file); }, ErrorCode::ModelFormat, file.string());
  };
  {
    auto tj = base;
    tj["model"].erase("vocab");
    check("no_vocab", tj, "model.vocab");
  }
  {
    auto tj = base;
    tj["model"]["vocab"] = nlohmann::json::array({"[UNK]", "a"});
    check("vocab_array", tj, "model.vocab");
  }
  {
    auto tj = base;
    tj["model"]["vocab"]["b"] = "two";
    check("vocab_string_id", tj, "model.vocab");
  }
  {
    auto tj = base;
    tj["model"]["vocab"]["b"] = 1000000000;
    check("vocab_huge_id", tj, "model.vocab");
  }
  {
    auto tj = base;
    tj["model"]["unk_token"] = "<unk>";
    check("unk_missing", tj, "<unk>");
  }
  {
    auto tj = base;
    tj["normalizer"] = {{"type", "NFKC"}};
    check("normalizer", tj, "normalizer");
  }
  // The base file itself loads and treats everything unknown as [UNK].
  fs::path ok = dir / "ok.json";
  write_text(ok, base.dump());
  auto tok = rankemb::text::load_tokenizer(ok);
  EXPECT_EQ(tok->encode("A b"), (std::vector<TokenId>{1, 0}));
}
