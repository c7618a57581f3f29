// USE-Lite unigram tokenizer: corpus parity with the @energetic-ai/embeddings JS tokenizer
// (tests/fixtures/text/use_unigram.expected.jsonl, scripts/regen/use_tokenizer.js), its quirks on
// a tiny vocabulary (expectations checked against the same JS code), and loader errors.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace {

namespace fs = std::filesystem;
using rankemb::ErrorCode;
using rankemb::text::TokenId;
using Ids = std::vector<TokenId>;

fs::path use_vocab() { return rankemb::test::asset("use-lite/dist/vocab.json"); }

const rankemb::text::Tokenizer& use_tokenizer() {
  static const auto tok = rankemb::text::load_tokenizer(use_vocab());
  return *tok;
}

// A vocab.json with `contents`, in a fresh file per call.
fs::path write_vocab(const std::string& contents) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::path(testing::TempDir()) / fmt::format("use_unigram_test_{}", ::getpid());
  fs::create_directories(dir);
  fs::path file = dir / fmt::format("vocab{}.json", counter++);
  rankemb::io::write_atomic(file, contents);
  return file;
}

constexpr const char* kReserved = R"(["\ufffd",0],["<s>",0],["</s>",0],["x1",0],["x2",0],["x3",0])";

// Throws what load_tokenizer throws for `contents`; fails the test when it does not throw.
void expect_model_format(const std::string& contents, const std::vector<std::string>& must_mention) {
  fs::path file = write_vocab(contents);
  try {
    rankemb::text::load_tokenizer(file);
    ADD_FAILURE() << "expected an error for " << contents;
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << e.what();
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    for (const auto& m : must_mention) EXPECT_NE(std::string(e.what()).find(m), std::string::npos) << e.what();
  }
}

TEST(UseUnigram, MatchesJsTokenizerOnCorpus) {
  const auto& corpus = rankemb::test::parity_corpus();
  auto expected = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "text" / "use_unigram.expected.jsonl");
  ASSERT_EQ(expected.size(), corpus.size());
  const auto& tok = use_tokenizer();
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    Ids want = expected[i].at("ids").get<Ids>();
    Ids got = tok.encode(corpus[i].text);
    if (got == want) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << corpus[i].where << ": " << corpus[i].text << "\n  expected " << fmt::format("{}", want)
                    << "\n  got      " << fmt::format("{}", got);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << corpus.size() << " corpus entries";
}

TEST(UseUnigram, VocabularyAndSpecials) {
  const auto& tok = use_tokenizer();
  EXPECT_EQ(tok.kind(), "use-unigram");
  EXPECT_EQ(tok.vocab_size(), 8000u);
  EXPECT_EQ(tok.token_to_id("\u2581the"), 9);
  EXPECT_EQ(tok.id_to_token(9), "\u2581the");
  EXPECT_EQ(tok.token_to_id("<s>"), 1);
  EXPECT_FALSE(tok.token_to_id("no such piece"));
  // The real file lists "”5" three times; the JS trie keeps the last (id 4464).
  EXPECT_EQ(tok.token_to_id("\u201d5"), 4464);
  EXPECT_EQ(tok.special_tokens().unk, 0);
  EXPECT_TRUE(tok.post_template().prefix.empty());
  EXPECT_TRUE(tok.post_template().suffix.empty());
  // The JS embedder adds no start/end tokens, so the option changes nothing.
  EXPECT_EQ(tok.encode("Hello world.", {.add_special_tokens = true}), tok.encode("Hello world.", {.add_special_tokens = false}));
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_EQ(tok.encode("Hello world. Hello again.", {.max_length = 3}).size(), 3u);
  EXPECT_THROW(tok.id_to_token(8000), rankemb::Error);
}

TEST(UseUnigram, DecodeJoinsPiecesAndTrims) {
  const auto& tok = use_tokenizer();
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  Ids with_controls = tok.encode("A cat");
  with_controls.insert(with_controls.begin(), 1);
  with_controls.push_back(2);
  EXPECT_EQ(tok.decode(with_controls), "A cat");
  EXPECT_EQ(tok.decode(with_controls, false), "<s> A cat</s>");
  EXPECT_EQ(tok.decode(tok.encode("x \xf0\x9f\x98\x80 y")), "x \xef\xbf\xbd y");  // unknown stays visible
  const Ids bad = {9, 8000};
  try {
    (void)tok.decode(bad);
    ADD_FAILURE() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Input);
  }
}

TEST(UseUnigram, InvalidUtf8IsAnInputError) {
  try {
    (void)use_tokenizer().encode("ok \xc3(");
    ADD_FAILURE() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Input);
  }
}

// Expected ids below were produced by the JS tokenizer on this same vocabulary.
TEST(UseUnigram, ReproducesJsQuirksOnTinyVocab) {
  const std::string vocab = std::string("[") + kReserved +
                            R"(,["\u2581",-1],["a",-1],["b",-1],["ab",-2],["c",-1],["dd",-1],["c",-5],["e",null],["\u2581e",-1.5]])";
  auto tok = rankemb::text::load_tokenizer(write_vocab(vocab));
  EXPECT_EQ(tok->encode("ab"), (Ids{6, 7, 8}));       // equal scores: the later start (shorter piece) wins
  EXPECT_EQ(tok->encode("c"), (Ids{6, 12}));          // a repeated piece matches as its last id
  EXPECT_EQ(tok->encode("e"), (Ids{6, 13}));          // a null score counts as 0
  EXPECT_EQ(tok->encode("x\xf0\x9f\x98\x80y"), (Ids{6, 0}));  // unknown run (emoji = one symbol) -> one id 0
  EXPECT_EQ(tok->encode("ddd"), (Ids{6, 0, 11}));     // unreachable position 2 backtracks as unknown
  EXPECT_EQ(tok->encode("a  b"), (Ids{6, 7, 6, 6, 8}));  // every space is its own separator
  EXPECT_EQ(tok->encode("a\nb"), (Ids{6, 7, 0, 8}));  // only U+0020 becomes the separator
  EXPECT_EQ(tok->encode("  "), (Ids{6, 6, 6}));
  EXPECT_EQ(tok->encode("<s>"), (Ids{6, 0}));         // reserved pieces never match text
  EXPECT_TRUE(tok->encode("").empty());
}

TEST(UseUnigram, MalformedVocabularies) {
  expect_model_format(R"({"a": 1})", {});  // not an array (load_tokenizer then wants a tokenizer.json)
  expect_model_format("[", {});
  expect_model_format("[]", {"empty"});
  expect_model_format(std::string("[") + kReserved + R"(,["a",-1],["b","x"]])", {"entry 7"});
  expect_model_format(std::string("[") + kReserved + R"(,["a",-1],[3,-1]])", {"entry 7"});
  expect_model_format(std::string("[") + kReserved + R"(,["a"]])", {"entry 6"});
  expect_model_format(std::string("[") + kReserved + R"(,["a",-1,0]])", {"entry 6"});
  expect_model_format(std::string("[") + kReserved + R"(,"a"])", {"entry 6"});
  expect_model_format(std::string("[") + kReserved + R"(,["",-1]])", {"entry 6"});
}

}  // namespace
