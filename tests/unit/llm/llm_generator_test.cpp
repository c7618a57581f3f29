// The guided LLM backend (llm/llm_generator) on a toy model (fake_lm.h): the guided score
// formula and whole guided greedy decodes against numpy (tests/fixtures/llm/
// guided_toy.expected.jsonl from scripts/regen/llm_guided.py), one stream for equal prompts and
// g == 1, independence from batch composition, stop tokens, the token limit, special-token
// skipping, stripping, slot bookkeeping, sampling determinism and error paths.
#include "rankemb/llm/llm_generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/corpus.h"
#include "common/expect_error.h"
#include "common/test_paths.h"
#include "fake_lm.h"
#include "run_requests.h"
#include "rankemb/util/error.h"

using namespace rankemb::generate;
using namespace rankemb::llm;
using rankemb::ErrorCode;
using rankemb::test::ByteTokenizer;
using rankemb::test::expect_error;
using rankemb::test::FakeCausalLm;

using rankemb::test::run_all;

namespace {

constexpr const char* kToyPrompt = "Rewrite: {sentence}\nResult:";

LlmGeneratorOptions toy_options(double g = 1.5, std::size_t batch = 4, int max_new = 12) {
  LlmGeneratorOptions o;
  o.batch = batch;
  o.guidance = g;
  o.max_new_tokens = max_new;
  o.prompt_template = kToyPrompt;
  o.chat_template = "none";
  return o;
}

// [BOS] + bytes of the filled toy prompt, as the generator should tokenize it.
std::vector<std::int64_t> toy_prompt(const std::string& sentence, const std::string& tmpl = kToyPrompt) {
  std::vector<std::int64_t> ids{0};
  for (unsigned char c : fill_prompt(tmpl, sentence)) ids.push_back(4 + c);
  return ids;
}


StepRequest request(std::uint64_t ticket, std::string current, std::string previous, int step = 2) {
  StepRequest r;
  r.ticket = ticket;
  r.current = std::move(current);
  r.previous = std::move(previous);
  r.chain_id = ticket * 7 + 3;
  r.step = step;
  return r;
}

// Plain greedy decoding on the toy model with no guidance: argmax of the logits.
std::vector<std::int64_t> plain_greedy(std::vector<std::int64_t> prompt, int max_new) {
  std::vector<std::int64_t> gen;
  while (static_cast<int>(gen.size()) < max_new) {
    std::vector<std::int64_t> h = prompt;
    h.insert(h.end(), gen.begin(), gen.end());
    auto logits = rankemb::test::toy_logits(h);
    gen.push_back(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (gen.back() == 1 || gen.back() == 2) break;
  }
  return gen;
}

std::string toy_text(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (auto id : ids)
    if (id >= 4) s += static_cast<char>(id - 4);
  return strip_generated(s);
}

const std::vector<std::string>& sentences() {
  static const std::vector<std::string> s = {
      "A man is playing a guitar.", "Two dogs run through a field of snow.", "The cat sat on the mat.",
      "  A woman slices an onion.  ", "Kids are playing soccer in the park.", "Nobody is riding the bike.",
      "A plane is taking off.", "Crème brûlée à la carte, naïve café.", "我爱北京天安门。", "x"};
  return s;
}

TEST(LlmGenerator, DefaultPromptIsTheAuthorsVerbatim) {
  // generation/generation.py of hly1998/RankingSentenceGeneration (f-string after a line
  // continuation, 28 spaces of source indentation on each line).
  const std::string indent(28, ' ');
  const std::string expected = indent +
                               "Rewrite the following sentence or phrase using different words and sentence structure "
                               "while preserving its original meaning. \n" +
                               indent +
                               "Directly answer with the rewritten sentence. Don't give any explanation or description "
                               "other than the rewritten sentence.\n" +
                               indent + "Write a sentence that is entailment with: ```{sentence}```. Result: ";
  EXPECT_EQ(default_prompt_template(), expected);
  std::string filled = fill_prompt(default_prompt_template(), " \tA dog barks.\n");
  EXPECT_NE(filled.find("entailment with: ```A dog barks.```. Result: "), std::string::npos) << filled;
  EXPECT_EQ(fill_prompt("{sentence} / {sentence}", "\u3000x y\u00a0"), "x y / x y");  // Python str.strip()
  expect_error([] { fill_prompt("no placeholder", "x"); }, ErrorCode::Usage, "{sentence}");
  expect_error([] { fill_prompt("{sentence}", "bad \xff utf8"); }, ErrorCode::Input, "UTF-8");
}

TEST(LlmGenerator, GuidedScoresMatchNumpy) {
  auto rows = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "llm/guided_toy.expected.jsonl");
  int checked = 0;
  double worst = 0;
  for (const auto& row : rows) {
    if (row["kind"] != "scores") continue;
    auto pos = row["pos"].get<std::vector<float>>();
    auto neg = row["neg"].get<std::vector<float>>();
    auto want = row["scores"].get<std::vector<float>>();
    auto got = guided_scores(pos, neg, row["g"].get<double>());
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  EXPECT_LT(worst, 1e-5) << "largest |score - numpy| over " << checked << " tables";
  // g = 1 is the positive log-softmax alone; equal rows give it for any g.
  std::vector<float> a{0.5f, -1.0f, 2.0f}, b{3.0f, 1.0f, -2.0f};
  EXPECT_EQ(guided_scores(a, b, 1.0), guided_scores(a, {}, 7.0));
  EXPECT_EQ(guided_scores(a, a, 3.0), guided_scores(a, {}, 1.0));
  // The formula by hand: lneg + g (lpos - lneg) == (1 - g) lneg + g lpos.
  auto lp = guided_scores(a, {}, 1.0), ln = guided_scores(b, {}, 1.0), s = guided_scores(a, b, 2.5);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(s[i], -1.5 * ln[i] + 2.5 * lp[i], 1e-5);
}

TEST(LlmGenerator, ArgmaxTiesGoToTheLowestId) {
  EXPECT_EQ(argmax_lowest(std::vector<float>{1, 3, 3, 2}), 1);
  EXPECT_EQ(argmax_lowest(std::vector<float>{5, 5}), 0);
  EXPECT_EQ(argmax_lowest(std::vector<float>{-INFINITY, -1}), 1);
}

// Whole guided greedy decodes of corpus sentence pairs against the numpy reference, each g in its
// own generator (batch 4, continuous); the streams of every request are checked through the
// histories the fake saw: both received prompt + every chosen token but the last.
TEST(LlmGenerator, GuidedDecodesMatchNumpy) {
  const auto& corpus = rankemb::test::parity_corpus();
  auto rows = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "llm/guided_toy.expected.jsonl");
  std::map<double, std::vector<const nlohmann::json*>> by_g;
  for (const auto& row : rows)
    if (row["kind"] == "decode") by_g[row["g"].get<double>()].push_back(&row);
  int total = 0, mismatches = 0;
  for (const auto& [g, group] : by_g) {
    auto model = std::make_shared<FakeCausalLm>();
    auto gen = make_llm_generator(model, toy_options(g, 4, 12));
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < group.size(); ++i) {
      const auto& row = *group[i];
      reqs.push_back(request(i, corpus.at(row["current"].get<std::size_t>()).text,
                             corpus.at(row["previous"].get<std::size_t>()).text));
    }
    auto results = run_all(*gen, reqs);
    for (std::size_t i = 0; i < group.size(); ++i) {
      const auto& row = *group[i];
      ++total;
      const auto& r = results[i];
      auto ids = row["ids"].get<std::vector<std::int64_t>>();
      std::vector<std::int64_t> fed(ids.begin(), ids.end() - 1);
      auto with = [&](std::vector<std::int64_t> p) {
        p.insert(p.end(), fed.begin(), fed.end());
        return std::count(model->cleared.begin(), model->cleared.end(), p);
      };
      auto pos = toy_prompt(reqs[i].current), neg = toy_prompt(reqs[i].previous);
      const bool ok = r.text == row["text"].get<std::string>() && r.new_tokens == ids.size() &&
                      r.hit_token_limit == (ids.size() == 12) && with(pos) >= 1 &&
                      (row["streams"] == 1 ? (pos == neg || with(neg) == 0) : with(neg) >= 1);
      if (!ok && ++mismatches <= 5) {
        ADD_FAILURE() << "g=" << g << " " << corpus[row["current"].get<std::size_t>()].where << " vs "
                      << corpus[row["previous"].get<std::size_t>()].where << ": expected '" << row["text"].get<std::string>()
                      << "' (" << row["streams"] << " streams), got '" << r.text << "' new_tokens=" << r.new_tokens;
      }
    }
    EXPECT_GE(model->reserve_calls, 1);
    EXPECT_EQ(model->busy_slots(), 0u) << "every finished request clears its slots";
  }
  EXPECT_EQ(total, 25);
  EXPECT_EQ(mismatches, 0) << mismatches << "/" << total << " decodes differ from numpy";
}

TEST(LlmGenerator, EqualPromptsAreUnguidedGreedyOnOneStream) {
  for (double g : {1.5, 3.0}) {
    auto model = std::make_shared<FakeCausalLm>();
    auto gen = make_llm_generator(model, toy_options(g, 3, 10));
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < sentences().size(); ++i)
      reqs.push_back(request(i, sentences()[i], sentences()[i], 1));
    // Same text after the template's strip: still one stream.
    reqs.push_back(request(100, "The cat sat on the mat.", " The cat sat on the mat. "));
    auto results = run_all(*gen, reqs);
    for (const auto& r : reqs) {
      auto want = plain_greedy(toy_prompt(r.current), 10);
      EXPECT_EQ(results[r.ticket].text, toy_text(want)) << r.current;
      EXPECT_EQ(results[r.ticket].new_tokens, want.size());
    }
    std::size_t rows = 0;
    for (const auto& c : model->calls) rows += c.slots.size();
    EXPECT_EQ(rows, reqs.size() * 10) << "one stream per request, one row per token";
  }
}

TEST(LlmGenerator, GuidanceOneUsesOnlyThePositiveStream) {
  auto model = std::make_shared<FakeCausalLm>();
  auto gen = make_llm_generator(model, toy_options(1.0, 4, 8));
  std::vector<StepRequest> reqs;
  for (std::size_t i = 0; i + 1 < sentences().size(); ++i) reqs.push_back(request(i, sentences()[i], sentences()[i + 1]));
  auto results = run_all(*gen, reqs);
  std::size_t rows = 0;
  for (const auto& c : model->calls) rows += c.slots.size();
  EXPECT_EQ(rows, reqs.size() * 8);
  for (const auto& r : reqs) EXPECT_EQ(results[r.ticket].text, toy_text(plain_greedy(toy_prompt(r.current), 8)));
  EXPECT_DOUBLE_EQ(gen->guidance(), 1.0);
}

// Guided requests use two streams, fed the same tokens; different prompts change the output.
TEST(LlmGenerator, GuidedRequestsUseTwoStreamsInOneForward) {
  auto model = std::make_shared<FakeCausalLm>();
  auto gen = make_llm_generator(model, toy_options(1.5, 2, 6));
  gen->submit(request(1, sentences()[0], sentences()[1]));
  gen->submit(request(2, sentences()[2], sentences()[2], 1));
  EXPECT_EQ(gen->pending(), 2u);
  auto first = gen->poll();
  EXPECT_TRUE(first.empty());
  ASSERT_EQ(model->calls.size(), 1u);
  EXPECT_EQ(model->calls[0].slots.size(), 3u) << "2 streams + 1 stream, prefilled together";
  EXPECT_EQ(model->calls[0].n_tokens[0], toy_prompt(sentences()[0]).size());
  EXPECT_EQ(model->calls[0].n_tokens[1], toy_prompt(sentences()[1]).size());
  gen->poll();
  ASSERT_EQ(model->calls.size(), 2u);
  EXPECT_EQ(model->calls[1].n_tokens, (std::vector<std::size_t>{1, 1, 1}));
  std::size_t polls = 0;
  std::vector<StepResult> all;
  while (gen->pending() > 0 && polls++ < 20) {
    auto got = gen->poll();
    all.insert(all.end(), got.begin(), got.end());
  }
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(model->calls.size(), 6u) << "one forward call per poll, 6 tokens";
  EXPECT_EQ(all[0].new_tokens, 6u);
  EXPECT_TRUE(all[0].hit_token_limit);
}

TEST(LlmGenerator, ContinuousBatchingPrefillsNewRequestsWithRunningOnes) {
  auto model = std::make_shared<FakeCausalLm>();
  auto gen = make_llm_generator(model, toy_options(1.5, 2, 4));
  gen->submit(request(1, sentences()[0], sentences()[1]));
  gen->poll();  // prefill
  gen->poll();  // decode
  gen->submit(request(2, sentences()[3], sentences()[4]));
  expect_error([&] { gen->submit(request(3, "a", "b")); }, ErrorCode::Usage, "capacity 2");
  gen->poll();
  const auto& c = model->calls.back();
  ASSERT_EQ(c.slots.size(), 4u);
  EXPECT_EQ(c.n_tokens[0], 1u);
  EXPECT_EQ(c.n_tokens[1], 1u);
  EXPECT_EQ(c.n_tokens[2], toy_prompt(sentences()[3]).size());
  EXPECT_LE(*std::max_element(c.slots.begin(), c.slots.end()), 3u) << "2 * batch slots";
}

// The same requests in different orders, batch sizes and company give the same results.
TEST(LlmGenerator, ResultsDoNotDependOnBatchComposition) {
  for (double temperature : {0.0, 0.9}) {
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < sentences().size(); ++i)
      reqs.push_back(request(i, sentences()[i], sentences()[(i + 3) % sentences().size()], i % 3 == 0 ? 1 : 4));
    reqs[4].previous = reqs[4].current;
    std::map<std::uint64_t, StepResult> reference;
    for (std::size_t batch : {1u, 3u, 16u}) {
      for (bool reversed : {false, true}) {
        auto order = reqs;
        if (reversed) std::reverse(order.begin(), order.end());
        auto o = toy_options(2.0, batch, 9);
        o.temperature = temperature;
        o.top_p = temperature > 0 ? 0.9 : 1.0;
        o.seed = 42;
        auto gen = make_llm_generator(std::make_shared<FakeCausalLm>(), o);
        auto got = run_all(*gen, order);
        if (reference.empty()) {
          reference = got;
          continue;
        }
        for (const auto& r : reqs) {
          EXPECT_EQ(got[r.ticket].text, reference[r.ticket].text)
              << "T=" << temperature << " batch " << batch << (reversed ? " reversed" : "") << ": " << r.current;
          EXPECT_EQ(got[r.ticket].new_tokens, reference[r.ticket].new_tokens);
        }
      }
    }
  }
}

TEST(LlmGenerator, SamplingIsSeededPerRequest) {
  auto run = [](std::uint64_t seed, double temperature, double top_p, std::uint64_t chain_offset = 0) {
    auto o = toy_options(1.5, 4, 12);
    o.temperature = temperature;
    o.top_p = top_p;
    o.seed = seed;
    auto gen = make_llm_generator(std::make_shared<FakeCausalLm>(), o);
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < 6; ++i) {
      reqs.push_back(request(i, sentences()[i], sentences()[i + 1]));
      reqs.back().chain_id += chain_offset;
    }
    std::vector<std::string> texts;
    for (auto& [t, r] : run_all(*gen, reqs)) texts.push_back(r.text);
    return texts;
  };
  auto greedy = run(0, 0.0, 1.0);
  EXPECT_EQ(run(1, 1.0, 1.0), run(1, 1.0, 1.0));
  EXPECT_NE(run(1, 1.0, 1.0), run(2, 1.0, 1.0));
  EXPECT_NE(run(1, 1.0, 1.0), run(1, 1.0, 1.0, 1)) << "the chain id feeds the RNG";
  EXPECT_NE(run(1, 1.0, 1.0), greedy);
  EXPECT_EQ(run(7, 1.0, 1e-9), greedy) << "top_p -> 0 keeps only the best token";
  EXPECT_EQ(run(7, 1e-4, 1.0), greedy) << "temperature -> 0 is greedy";
}

// Stops: EOS and end-of-turn end a request without appearing in the text; the token limit sets
// hit_token_limit; special tokens are skipped; backticks and white space are stripped.
TEST(LlmGenerator, StopTokensLimitSpecialsAndStrip) {
  const std::string s = "A man is playing a guitar.";
  const std::size_t p = toy_prompt(s).size();
  auto run_one = [&](std::map<std::size_t, std::int64_t> forced, int max_new) {
    auto model = std::make_shared<FakeCausalLm>();
    model->forced = std::move(forced);
    auto gen = make_llm_generator(model, toy_options(1.5, 2, max_new));
    auto results = run_all(*gen, {request(5, s, s, 1)});
    return results[5];
  };
  // The n-th generated token is chosen from the logits after history length p + n - 1.
  auto eos = run_one({{p + 3, 1}}, 20);
  auto three = plain_greedy(toy_prompt(s), 3);
  EXPECT_EQ(eos.new_tokens, 4u);
  EXPECT_FALSE(eos.hit_token_limit);
  EXPECT_EQ(eos.text, toy_text(three));
  auto eot = run_one({{p + 2, 2}}, 20);
  EXPECT_EQ(eot.new_tokens, 3u);
  EXPECT_FALSE(eot.hit_token_limit);
  auto eos_at_limit = run_one({{p + 4, 1}}, 5);
  EXPECT_EQ(eos_at_limit.new_tokens, 5u);
  EXPECT_FALSE(eos_at_limit.hit_token_limit) << "the last allowed token is EOS: a stop, not the limit";
  auto limit = run_one({}, 7);
  EXPECT_EQ(limit.new_tokens, 7u);
  EXPECT_TRUE(limit.hit_token_limit);
  EXPECT_EQ(limit.text, toy_text(plain_greedy(toy_prompt(s), 7)));
  // <|sep|> (special, not a stop) and BOS in the middle are generated but not shown.
  auto sep = run_one({{p, 4 + '`'}, {p + 1, 4 + ' '}, {p + 2, 3}, {p + 3, 4 + 'o'}, {p + 4, 4 + 'k'}, {p + 5, 0},
                      {p + 6, 4 + '`'}, {p + 7, 4 + '\n'}, {p + 8, 1}},
                     20);
  EXPECT_EQ(sep.text, "ok");
  EXPECT_EQ(sep.new_tokens, 9u);
  auto inner = run_one({{p, 4 + 'a'}, {p + 1, 4 + '`'}, {p + 2, 4 + ' '}, {p + 3, 4 + 'b'}, {p + 4, 2}}, 20);
  EXPECT_EQ(inner.text, "a` b") << "only surrounding backticks and spaces go";
}

TEST(LlmGenerator, LongerPromptReReservesAndReplaysRunningStreams) {
  const std::string long_sentence(700, 'w');
  std::vector<StepRequest> reqs{request(1, sentences()[0], sentences()[1]), request(2, long_sentence, sentences()[2]),
                                request(3, sentences()[3], long_sentence)};
  auto model = std::make_shared<FakeCausalLm>();
  auto gen = make_llm_generator(model, toy_options(1.5, 3, 12));
  gen->submit(reqs[0]);
  gen->poll();
  gen->poll();
  gen->submit(reqs[1]);
  gen->submit(reqs[2]);
  std::map<std::uint64_t, StepResult> got;
  while (gen->pending() > 0)
    for (auto& r : gen->poll()) got[r.ticket] = r;
  EXPECT_EQ(model->reserve_calls, 2);
  // Each request alone, in a generator sized for it from the start.
  for (const auto& r : reqs) {
    auto alone_model = std::make_shared<FakeCausalLm>();
    auto alone = make_llm_generator(alone_model, toy_options(1.5, 1, 12));
    auto want = run_all(*alone, {r});
    EXPECT_EQ(alone_model->reserve_calls, 1);
    EXPECT_EQ(got[r.ticket].text, want[r.ticket].text) << r.ticket;
  }
}

TEST(LlmGenerator, PromptRendering) {
  // none: [BOS] + raw prompt (the tokenizer's post-processor prefix); chatml: no BOS.
  auto model = std::make_shared<FakeCausalLm>();
  auto gen = make_llm_generator(model, toy_options(1.0, 1, 1));
  run_all(*gen, {request(1, "Hi there.", "Hi there.")});
  ASSERT_EQ(model->cleared.size(), 1u);
  EXPECT_EQ(model->cleared[0], toy_prompt("Hi there."));

  auto o = toy_options(1.0, 1, 1);
  o.chat_template = "chatml";
  o.prompt_template = "";  // the paper's prompt
  auto chat_model = std::make_shared<FakeCausalLm>();
  auto chat = make_llm_generator(chat_model, o);
  run_all(*chat, {request(1, "Hi there.", "Hi there.")});
  std::string want = "<|im_start|>user\n" + fill_prompt(default_prompt_template(), "Hi there.") +
                     "<|im_end|>\n<|im_start|>assistant\n";
  std::vector<std::int64_t> ids;
  for (unsigned char c : want) ids.push_back(4 + c);
  ASSERT_EQ(chat_model->cleared.size(), 1u);
  EXPECT_EQ(chat_model->cleared[0], ids);

  o.chat_template = "llama3";  // BOS string from the tokenizer when there is no model_dir
  auto l3_model = std::make_shared<FakeCausalLm>();
  auto l3 = make_llm_generator(l3_model, o);
  run_all(*l3, {request(1, "Hi there.", "Hi there.")});
  ASSERT_EQ(l3_model->cleared.size(), 1u);
  ASSERT_FALSE(l3_model->cleared[0].empty());
  EXPECT_EQ(l3_model->cleared[0][0], 0) << "<s> rendered by the template, encoded as the special token";
  EXPECT_EQ(std::count(l3_model->cleared[0].begin(), l3_model->cleared[0].end(), 0), 1);
  EXPECT_EQ(l3->model_name(), "causal-lm");
  EXPECT_EQ(make_llm_generator(l3_model, o, "toy")->model_name(), "toy");
}

TEST(LlmGenerator, Errors) {
  auto model = std::make_shared<FakeCausalLm>();
  auto bad = [&](auto edit, const char* needle) {
    auto o = toy_options();
    edit(o);
    expect_error([&] { make_llm_generator(model, o); }, ErrorCode::Usage, needle);
  };
  bad([](LlmGeneratorOptions& o) { o.batch = 0; }, "batch");
  bad([](LlmGeneratorOptions& o) { o.max_new_tokens = 0; }, "max_new_tokens");
  bad([](LlmGeneratorOptions& o) { o.top_p = 0; }, "top_p");
  bad([](LlmGeneratorOptions& o) { o.temperature = -1; }, "temperature");
  bad([](LlmGeneratorOptions& o) { o.guidance = NAN; }, "guidance");
  // The dtype is an enum now (util/types.h): an unsupported name fails where it is parsed.
  expect_error([] { rankemb::parse_dtype("float16"); }, ErrorCode::Usage, "float16");
  bad([](LlmGeneratorOptions& o) { o.chat_template = "jinja"; }, "jinja");
  bad([](LlmGeneratorOptions& o) { o.prompt_template = "no placeholder"; }, "{sentence}");
  expect_error([&] { make_llm_generator(nullptr, toy_options()); }, ErrorCode::Usage, "no model");
  expect_error([&] { make_llm_generator(toy_options()); }, ErrorCode::Usage, "model directory");

  auto no_tok = std::make_shared<FakeCausalLm>();
  no_tok->with_tokenizer = false;
  expect_error([&] { make_llm_generator(no_tok, toy_options()); }, ErrorCode::ModelFormat, "tokenizer");

  auto gen = make_llm_generator(model, toy_options(1.5, 2));
  expect_error([&] { gen->submit(request(1, "bad \xc3 utf8", "ok")); }, ErrorCode::Input, "current sentence");
  expect_error([&] { gen->submit(request(1, "ok", "bad \xc3 utf8")); }, ErrorCode::Input, "previous sentence");
  EXPECT_EQ(gen->pending(), 0u) << "a rejected request takes no slot";
  EXPECT_TRUE(gen->poll().empty());
  gen->submit(request(1, "ok", "ok"));
  gen->submit(request(2, "ok", "fine"));
  expect_error([&] { gen->submit(request(3, "ok", "ok")); }, ErrorCode::Usage, "capacity");

  auto o = toy_options();
  o.model_dir = rankemb::test::fixtures_dir() / "no-such-model";
  EXPECT_THROW(make_llm_generator(o), rankemb::Error);
}

}  // namespace

namespace {
bool cleared_starts_with(const FakeCausalLm& model, const std::vector<std::int64_t>& prefix) {
  return std::any_of(model.cleared.begin(), model.cleared.end(),
                     [&](const auto& h) { return h.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), h.begin()); });
}
}  // namespace

// The copy negative: at step 1 (previous == current) the paper's loop has nothing to steer away
// from; negative = copy / auto runs a second stream on the copy prompt of the current sentence.
TEST(LlmGenerator, CopyNegativeSteersStepOneAwayFromACopy) {
  constexpr const char* kCopy = "Copy: {sentence}";
  std::map<std::string, std::map<std::uint64_t, StepResult>> by_mode;
  for (const char* mode : {"previous", "copy", "auto"}) {
    auto model = std::make_shared<FakeCausalLm>();
    LlmGeneratorOptions o = toy_options(2.0, 4, 10);
    o.negative = mode;
    o.copy_prompt_template = kCopy;
    auto gen = make_llm_generator(model, o);
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < 6; ++i) reqs.push_back(request(i, sentences()[i], sentences()[i], 1));
    by_mode[mode] = run_all(*gen, reqs);
    const bool copy_stream = cleared_starts_with(*model, toy_prompt(sentences()[0], kCopy));
    EXPECT_EQ(copy_stream, std::string(mode) != "previous") << mode;
  }
  bool steered = false;
  for (std::uint64_t t = 0; t < 6; ++t) {
    EXPECT_EQ(by_mode["previous"][t].text, toy_text(plain_greedy(toy_prompt(sentences()[t]), 10)));
    EXPECT_EQ(by_mode["copy"][t].text, by_mode["auto"][t].text);
    steered |= by_mode["copy"][t].text != by_mode["previous"][t].text;
  }
  EXPECT_TRUE(steered);
  // Later steps: auto steers away from the previous sentence, as the paper does.
  auto model = std::make_shared<FakeCausalLm>();
  LlmGeneratorOptions o = toy_options(2.0, 4, 10);
  o.negative = "auto";
  o.copy_prompt_template = kCopy;
  auto gen = make_llm_generator(model, o);
  run_all(*gen, {request(1, sentences()[1], sentences()[2])});
  EXPECT_TRUE(cleared_starts_with(*model, toy_prompt(sentences()[2])));
  EXPECT_FALSE(cleared_starts_with(*model, toy_prompt(sentences()[1], kCopy)));
  o.negative = "sideways";
  expect_error([&] { make_llm_generator(std::make_shared<FakeCausalLm>(), o); }, ErrorCode::Usage, "unknown negative");
}

// A retry of the copy guard (attempt > 0) samples, deterministically per (chain, step, attempt).
TEST(LlmGenerator, RetriesSampleDeterministically) {
  auto run = [](int attempt) {
    auto gen = make_llm_generator(std::make_shared<FakeCausalLm>(), toy_options(1.5, 4, 10));
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < 6; ++i) {
      reqs.push_back(request(i, sentences()[i], sentences()[i + 1]));
      reqs.back().attempt = attempt;
    }
    return run_all(*gen, reqs);
  };
  auto greedy = run(0), first = run(1), again = run(1), second = run(2);
  bool differs = false, differs_between = false;
  for (std::uint64_t t = 0; t < 6; ++t) {
    EXPECT_EQ(first[t].text, again[t].text);
    differs |= first[t].text != greedy[t].text;
    differs_between |= first[t].text != second[t].text;
  }
  EXPECT_TRUE(differs);
  EXPECT_TRUE(differs_between);
}
