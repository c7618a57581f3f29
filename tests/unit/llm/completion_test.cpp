// llm/completion (TextCompleter, the decoder behind /v1/completions): raw prompts decode exactly
// like the guided chain steps numpy computed (tests/fixtures/llm/guided_toy.expected.jsonl, the
// toy model of fake_lm.h) and like transformers on TinyStories-656K
// (tinystories_guided.expected.jsonl); stop strings, finish reasons, token counts, sampling
// seeds and errors against a greedy decode written here.
#include "rankemb/llm/completion.h"

#include <gtest/gtest.h>

#include <map>

#include "common/corpus.h"
#include "common/expect_error.h"
#include "common/test_paths.h"
#include "fake_lm.h"
#include "rankemb/generate/sentence_generator.h"
#include "rankemb/llm/llm_generator.h"
#include "rankemb/models/causal_lm.h"

using namespace rankemb::llm;
using rankemb::ErrorCode;
using rankemb::generate::strip_generated;
using rankemb::test::expect_error;
using rankemb::test::FakeCausalLm;

namespace {

constexpr const char* kToyPrompt = "Rewrite: {sentence}\nResult:";

// Greedy decoding of the toy model on raw text ([BOS] + bytes), stopping at EOS/EOT or max_new:
// argmax over toy_logits, the lowest id on ties (std::max_element).
std::vector<std::int64_t> toy_greedy(const std::string& text, int max_new) {
  std::vector<std::int64_t> h{0};
  for (unsigned char c : text) h.push_back(4 + c);
  std::vector<std::int64_t> gen;
  while (static_cast<int>(gen.size()) < max_new) {
    auto logits = rankemb::test::toy_logits(h);
    const std::int64_t t = std::max_element(logits.begin(), logits.end()) - logits.begin();
    gen.push_back(t);
    h.push_back(t);
    if (t == 1 || t == 2) break;
  }
  return gen;
}

std::string toy_text(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (auto id : ids)
    if (id >= 4) s += static_cast<char>(id - 4);
  return s;
}

CompletionOptions greedy(int max_tokens) {
  CompletionOptions o;
  o.max_tokens = max_tokens;
  o.temperature = 0;
  return o;
}

}  // namespace

TEST(TextCompleter, RawPromptsDecodeLikeNumpysGuidedSteps) {
  const auto& corpus = rankemb::test::parity_corpus();
  auto rows = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "llm/guided_toy.expected.jsonl");
  auto model = std::make_shared<FakeCausalLm>();
  TextCompleter completer(model, "");
  int total = 0;
  for (const auto& row : rows) {
    if (row["kind"] != "decode") continue;
    ++total;
    const std::string current = corpus.at(row["current"].get<std::size_t>()).text;
    const std::string previous = corpus.at(row["previous"].get<std::size_t>()).text;
    CompletionOptions o = greedy(12);
    o.guidance = row["g"].get<double>();
    o.negative_prompt = fill_prompt(kToyPrompt, previous);
    const auto got = completer.complete({fill_prompt(kToyPrompt, current)}, o).at(0);
    const auto ids = row["ids"].get<std::vector<std::int64_t>>();
    const bool stopped = ids.back() == 1 || ids.back() == 2;
    EXPECT_EQ(strip_generated(got.text), row["text"].get<std::string>()) << row.dump();
    EXPECT_EQ(got.completion_tokens, ids.size()) << row.dump();
    EXPECT_EQ(got.hit_token_limit, !stopped) << row.dump();
    EXPECT_EQ(got.prompt_tokens, 1 + fill_prompt(kToyPrompt, current).size());
  }
  EXPECT_EQ(total, 25);
  EXPECT_EQ(model->busy_slots(), 0u);
}

TEST(TextCompleter, ListsStopStringsAndFinishReasons) {
  auto model = std::make_shared<FakeCausalLm>();
  TextCompleter completer(model, "");
  const std::vector<std::string> prompts = {"Once upon a time", "A man is", "x"};
  auto all = completer.complete(prompts, greedy(10));
  ASSERT_EQ(all.size(), 3u);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto want = toy_greedy(prompts[i], 10);
    EXPECT_EQ(all[i].text, toy_text(want)) << "raw text, not stripped: " << prompts[i];
    EXPECT_EQ(all[i].completion_tokens, want.size());
    EXPECT_EQ(all[i].prompt_tokens, 1 + prompts[i].size());
  }
  // A stop string that the greedy text contains: the text ends before its first occurrence.
  const std::string full = toy_text(toy_greedy("Once upon a time", 10));
  ASSERT_GE(full.size(), 5u);
  const std::string stop = full.substr(3, 2);
  CompletionOptions o = greedy(10);
  o.stop = {"never there", stop};
  auto cut = completer.complete({"Once upon a time"}, o).at(0);
  EXPECT_EQ(cut.text, full.substr(0, full.find(stop)));
  EXPECT_FALSE(cut.hit_token_limit) << "a stop string is finish_reason stop";
  EXPECT_EQ(cut.completion_tokens, full.find(stop) + stop.size()) << "one byte per token: decoding stops at the string";
  EXPECT_EQ(find_stop("abcabc", {"c", "b"}), 1u);
  EXPECT_EQ(find_stop("abc", {}), std::string::npos);
}

TEST(TextCompleter, StopTokenEndsWithoutTextAndSpecialsAreHidden) {
  auto model = std::make_shared<FakeCausalLm>();
  const std::string prompt = "Hi";
  const std::size_t p = 1 + prompt.size();
  model->forced = {{p, 4 + 'o'}, {p + 1, 3}, {p + 2, 4 + 'k'}, {p + 3, 2}};
  TextCompleter completer(model, "");
  auto c = completer.complete({prompt}, greedy(20)).at(0);
  EXPECT_EQ(c.text, "ok");
  EXPECT_EQ(c.completion_tokens, 4u);
  EXPECT_FALSE(c.hit_token_limit);
}

TEST(TextCompleter, SamplingIsSeededPerPromptIndex) {
  auto model = std::make_shared<FakeCausalLm>();
  TextCompleter completer(model, "");
  CompletionOptions o;
  o.max_tokens = 12;
  o.temperature = 1.5;
  o.seed = 11;
  const auto a = completer.complete({"same", "same"}, o);
  EXPECT_NE(a[0].text, a[1].text) << "two prompts draw from two streams";
  EXPECT_EQ(completer.complete({"same"}, o).at(0).text, a[0].text) << "prompt 0 alone or in a list";
  o.seed = 12;
  EXPECT_NE(completer.complete({"same"}, o).at(0).text, a[0].text);
}

TEST(TextCompleter, Errors) {
  auto model = std::make_shared<FakeCausalLm>();
  TextCompleter completer(model, "");
  expect_error([&] { completer.complete({}, greedy(4)); }, ErrorCode::Usage, "no prompt");
  CompletionOptions o = greedy(4);
  o.stop = {""};
  expect_error([&] { completer.complete({"a"}, o); }, ErrorCode::Usage, "empty stop");
  expect_error([&] { completer.complete({"a"}, greedy(0)); }, ErrorCode::Usage, "max_new_tokens");
  model->with_tokenizer = false;
  expect_error([&] { TextCompleter(model, "toy"); }, ErrorCode::ModelFormat, "tokenizer");
}

// The real decoder: step 2 of the fixture's guided chains as raw completions, against
// transformers running the same guided loop.
TEST(TextCompleterTinyStories, GuidedRawCompletionsMatchTransformers) {
  const auto dir = rankemb::test::shared_model("tinystories-656k");
  std::shared_ptr<rankemb::models::CausalLm> model = rankemb::models::load_causal_lm(dir);
  TextCompleter completer(model, dir);
  EXPECT_FALSE(completer.has_chat_template());
  const auto& corpus = rankemb::test::parity_corpus();
  int n = 0;
  for (const auto& row : rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "llm/tinystories_guided.expected.jsonl")) {
    const std::string seed = corpus.at(row["seed"].get<std::size_t>()).text;
    const std::string x1 = row["step1"]["text"].get<std::string>();
    for (const char* step : {"step1", "step2"}) {
      CompletionOptions o = greedy(48);
      const bool second = std::string(step) == "step2";
      o.guidance = second ? row["g"].get<double>() : 1.0;
      if (second) o.negative_prompt = fill_prompt(default_prompt_template(), seed);
      const auto got = completer.complete({fill_prompt(default_prompt_template(), second ? x1 : seed)}, o).at(0);
      const auto ids = row[step]["ids"].get<std::vector<std::int64_t>>();
      EXPECT_EQ(strip_generated(got.text), row[step]["text"].get<std::string>()) << step << " " << row.dump();
      EXPECT_EQ(got.completion_tokens, ids.size()) << step;
      EXPECT_EQ(got.hit_token_limit, ids.back() != 2) << step;
      ++n;
    }
  }
  EXPECT_EQ(n, 24);
}
