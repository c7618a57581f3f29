// BPE tokenizers (byte-level GPT-2 / Llama-3 / Qwen3, SentencePiece-style TinyStories) against
// Hugging Face `tokenizers` on the parity corpus (fixtures from scripts/regen/bpe.py), the
// GGUF tokenizers built from tokenizer.ggml.* metadata (the byte-level BPE of SmolLM2 and Llama 3,
// the SentencePiece vocabularies of Llama 2 and Phi-3) against llama.cpp's own tokenizer on the same files
// (scripts/regen/bpe_gguf_llamacpp.py), plus the error paths of the loaders.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/corpus.h"
#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;
using rankemb::Error;
using rankemb::ErrorCode;
using rankemb::text::TokenId;

namespace {

// GPT-2's vocabulary and merges as a tokenizer.json with a Digits pre-tokenizer in front of
// ByteLevel (SmolLM's layout), written once per process.
fs::path gpt2_with_digits(bool individual) {
  static rankemb::test::TempDir dir("gpt2_digits");
  const std::string name = individual ? "digits.json" : "digit_runs.json";
  if (fs::exists(dir / name)) return dir / name;
  const fs::path gpt2 = rankemb::test::asset("gpt2-bpe");
  json merges = json::array();
  std::ifstream in(gpt2 / "vocab.bpe");
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && !line.starts_with("#version")) merges.push_back(line);
  json steps = json::array({json{{"type", "Digits"}, {"individual_digits", individual}},
                            json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}});
  json tj = {{"model", {{"type", "BPE"}, {"vocab", rankemb::io::read_json(gpt2 / "encoder.json")}, {"merges", merges}}},
             {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", steps}}},
             {"decoder", {{"type", "ByteLevel"}}},
             {"added_tokens", json::array({json{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}})}};
  return dir.write(name, tj.dump());
}

fs::path tokenizer_path(const std::string& name) {
  if (name == "gpt2") return rankemb::test::asset("gpt2-bpe");
  if (name == "gpt2_digits") return gpt2_with_digits(true);
  if (name == "gpt2_digit_runs") return gpt2_with_digits(false);
  if (name == "llama3") return rankemb::test::asset("llama3-tokenizer/models");
  if (name == "qwen3") return rankemb::test::asset("qwen3-tokenizer/models");
  if (name == "smollm2_gguf") return rankemb::test::asset("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
  if (name == "llama_spm_gguf") return rankemb::test::asset("llama-cpp-vocabs/ggml-vocab-llama-spm.gguf");
  if (name == "phi3_gguf") return rankemb::test::asset("llama-cpp-vocabs/ggml-vocab-phi-3.gguf");
  if (name == "llama_bpe_gguf") return rankemb::test::asset("llama-cpp-vocabs/ggml-vocab-llama-bpe.gguf");
  return rankemb::test::shared_model("tinystories-656k");
}

std::string ids_str(const std::vector<TokenId>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

class BpeParity : public ::testing::TestWithParam<std::string> {};

TEST_P(BpeParity, MatchesHuggingFaceOnCorpus) {
  const std::string name = GetParam();
  auto tok = rankemb::text::load_tokenizer(tokenizer_path(name));
  const auto& corpus = rankemb::test::parity_corpus();
  auto expected = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "text" / ("bpe_" + name + ".expected.jsonl"));
  ASSERT_EQ(expected.size(), corpus.size()) << "regenerate with scripts/regen/bpe.py";
  std::size_t id_mismatches = 0, text_mismatches = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    const auto& e = corpus[i];
    auto want = expected[i]["ids"].get<std::vector<TokenId>>();
    auto got = tok->encode(e.text);
    if (got != want && ++id_mismatches <= 5) {
      ADD_FAILURE() << name << " ids differ at " << e.where << "\n  text: " << json(e.text).dump()
                    << "\n  expected: " << ids_str(want) << "\n  got:      " << ids_str(got);
    }
    // Decode the reference ids so that decode() is checked even where encode() differs.
    auto want_text = expected[i]["decoded"].get<std::string>();
    auto got_text = tok->decode(want, true);
    if (got_text != want_text && ++text_mismatches <= 5) {
      ADD_FAILURE() << name << " decoded text differs at " << e.where << "\n  expected: " << json(want_text).dump()
                    << "\n  got:      " << json(got_text).dump();
    }
  }
  EXPECT_EQ(id_mismatches, 0u) << "of " << corpus.size();
  EXPECT_EQ(text_mismatches, 0u) << "of " << corpus.size();
}

INSTANTIATE_TEST_SUITE_P(All, BpeParity, ::testing::Values("gpt2", "gpt2_digits", "gpt2_digit_runs", "llama3", "qwen3", "tinystories", "smollm2_gguf",
                                                          "llama_spm_gguf", "phi3_gguf", "llama_bpe_gguf"),
                         [](const auto& info) { return info.param; });

// llama.cpp's own test vectors (models/ggml-vocab-*.gguf.inp/.out, written by its
// convert_hf_to_gguf_update.py from the Hugging Face tokenizers: no BOS, specials not parsed) for
// every vocabulary file whose tokenizer rankemb builds: byte-level BPE under six pre-tokenizers,
// SentencePiece under two.
class LlamaCppVocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppVocabVectors, MatchTheVectorsShippedWithTheFile) {
  const fs::path gguf = rankemb::test::asset("llama-cpp-vocabs/ggml-vocab-" + GetParam() + ".gguf");
  auto tok = rankemb::text::load_tokenizer(gguf);
  const std::string inp = rankemb::io::read_file(gguf.string() + ".inp"), out = rankemb::io::read_file(gguf.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (std::size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) texts.push_back(inp.substr(pos, hit - pos));
  std::vector<std::vector<TokenId>> want;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    want.emplace_back(std::istream_iterator<TokenId>(ids), std::istream_iterator<TokenId>());
  }
  ASSERT_GT(texts.size(), 30u);
  ASSERT_EQ(texts.size(), want.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto got = tok->encode(texts[i], {.add_special_tokens = false});
    if (got != want[i] && ++mismatches <= 3)
      ADD_FAILURE() << GetParam() << " vector " << i << ": " << json(texts[i]).dump() << "\n  expected: " << ids_str(want[i]) << "\n  got:      " << ids_str(got);
  }
  EXPECT_EQ(mismatches, 0u) << "of " << texts.size();
}

INSTANTIATE_TEST_SUITE_P(All, LlamaCppVocabVectors,
                         ::testing::Values("gpt-2", "llama-bpe", "qwen2", "starcoder", "refact", "command-r", "llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(Bpe, SpecialTokensAndKinds) {
  auto gpt2 = rankemb::text::load_tokenizer(tokenizer_path("gpt2"));
  EXPECT_EQ(gpt2->kind(), "byte-bpe");
  EXPECT_EQ(gpt2->special_tokens().eos, 50256);
  EXPECT_EQ(gpt2->vocab_size(), 50257u);
  EXPECT_EQ(gpt2->encode("<|endoftext|>"), std::vector<TokenId>{50256});

  auto llama = rankemb::text::load_tokenizer(tokenizer_path("llama3"));
  EXPECT_EQ(llama->special_tokens().bos, 128000);
  EXPECT_EQ(llama->special_tokens().eos, 128001);
  EXPECT_EQ(llama->vocab_size(), 128256u);
  EXPECT_TRUE(llama->is_special(128000));

  auto qwen = rankemb::text::load_tokenizer(tokenizer_path("qwen3"));
  EXPECT_EQ(qwen->token_to_id("<|im_end|>"), qwen->special_tokens().eos);
  EXPECT_EQ(qwen->token_to_id("<|endoftext|>"), qwen->special_tokens().pad);
  EXPECT_EQ(qwen->vocab_size(), 151669u);

  auto ts = rankemb::text::load_tokenizer(tokenizer_path("tinystories"));
  EXPECT_EQ(ts->kind(), "sp-bpe");
  EXPECT_EQ(ts->special_tokens().bos, 1);
  EXPECT_EQ(ts->special_tokens().eos, 2);
  EXPECT_EQ(ts->special_tokens().unk, 0);
  EXPECT_EQ(ts->post_template().prefix, std::vector<TokenId>{1});
}

TEST(Bpe, ConcurrentEncodesAgree) {
  auto tok = rankemb::text::load_tokenizer(tokenizer_path("llama3"));
  const auto& corpus = rankemb::test::parity_corpus();
  std::vector<std::vector<TokenId>> serial;
  for (const auto& e : corpus) serial.push_back(tok->encode(e.text));
  std::vector<std::size_t> bad(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = t; i < corpus.size(); i += 3) bad[t] += tok->encode(corpus[i].text) != serial[i];
    });
  }
  for (auto& th : threads) th.join();
  for (std::size_t t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0u) << "thread " << t;
}

TEST(Bpe, InvalidUtf8IsAnInputError) {
  auto tok = rankemb::text::load_tokenizer(tokenizer_path("qwen3"));
  try {
    tok->encode("ok \xc3(");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Input) << e.what();
  }
  EXPECT_THROW(tok->decode(std::vector<TokenId>{999999999}), Error);
}

// A minimal byte-free BPE tokenizer.json; tests break one field at a time.
json tiny_tokenizer() {
  return json::parse(R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<unk>": 3}, "merges": ["a b"], "unk_token": "<unk>"},
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false}
  })");
}

class BpeErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rankemb_bpe_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const json& j) {
    fs::path p = dir_ / "tokenizer.json";
    std::ofstream(p) << j.dump();
    return p;
  }
  // Expects loading to fail with ModelFormat and a message naming the file and `field`.
  void expect_model_format(const json& j, const std::string& field) {
    fs::path p = write(j);
    try {
      rankemb::text::load_tokenizer(p);
      ADD_FAILURE() << "expected an error mentioning " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << e.what();
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
  fs::path dir_;
};

TEST_F(BpeErrors, TinyTokenizerWorks) {
  auto tok = rankemb::text::load_tokenizer(write(tiny_tokenizer()));
  EXPECT_EQ(tok->encode("ab a  b ba c"), (std::vector<TokenId>{2, 0, 1, 1, 0, 3}));
}

TEST_F(BpeErrors, MergeWithUnknownToken) {
  auto j = tiny_tokenizer();
  j["model"]["merges"] = json::array({"a b", "a zz"});
  expect_model_format(j, "model.merges[1]");
  j["model"]["merges"] = json::array({json::array({"b", "a"})});  // "ba" is not in the vocab
  expect_model_format(j, "model.merges[0]");
  j["model"]["merges"] = json::array({"a b c"});
  expect_model_format(j, "model.merges[0]");
}

TEST_F(BpeErrors, BadSplitRegex) {
  auto j = tiny_tokenizer();
  j["pre_tokenizer"]["pattern"]["Regex"] = "(\\p{L}+";
  expect_model_format(j, "pre_tokenizer.pattern");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "[a-"}, "behavior": "Isolated", "invert": false}]})");
  expect_model_format(j, "pre_tokenizer.pretokenizers[0].pattern");
}

TEST_F(BpeErrors, MissingVocab) {
  auto j = tiny_tokenizer();
  j["model"].erase("vocab");
  expect_model_format(j, "model.vocab");
  j = tiny_tokenizer();
  j["model"]["vocab"] = json::array();
  expect_model_format(j, "model.vocab");
  j = tiny_tokenizer();
  j["model"]["unk_token"] = "<nope>";
  expect_model_format(j, "model.unk_token");
}

TEST_F(BpeErrors, UnsupportedPipelineStep) {
  auto j = tiny_tokenizer();
  j["pre_tokenizer"] = json::parse(R"({"type": "BertPreTokenizer"})");
  expect_model_format(j, "pre_tokenizer");
  j = tiny_tokenizer();
  j["decoder"] = json::parse(R"({"type": "Sequence", "decoders": [{"type": "Strip", "content": "ab", "start": 1, "stop": 0}]})");
  expect_model_format(j, "decoder.decoders[0].content");
}

}  // namespace
