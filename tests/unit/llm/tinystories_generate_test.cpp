// The guided LLM backend end to end on real weights: TinyStories-656K (a LlamaForCausalLM base
// model without chat template) through models::load_causal_lm. Two-step chains against Hugging
// Face transformers running the same guided loop (tests/fixtures/llm/
// tinystories_guided.expected.jsonl from scripts/regen/llm_guided_tinystories.py), determinism,
// and independence from batch size and submission order.
#include "rankemb/llm/llm_generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "run_requests.h"
#include "rankemb/models/causal_lm.h"

using namespace rankemb::generate;
using namespace rankemb::llm;

using rankemb::test::run_all;

namespace {

constexpr int kMaxNew = 48;  // as in the fixture

std::filesystem::path model_dir() { return rankemb::test::shared_model("tinystories-656k"); }

LlmGeneratorOptions options(double g, std::size_t batch) {
  LlmGeneratorOptions o;
  o.model_dir = model_dir();
  o.batch = batch;
  o.guidance = g;
  o.max_new_tokens = kMaxNew;
  return o;  // chat_template auto: none for this base model; the paper's prompt
}

struct Case {
  std::string seed, x1_want, x2_want;
  std::size_t n1 = 0, n2 = 0;
  bool hit1 = false, hit2 = false;  // stopped at kMaxNew without EOS (id 2)
  double g = 1.5;
  std::string where;
};

std::vector<Case> fixture_cases() {
  const auto& corpus = rankemb::test::parity_corpus();
  std::vector<Case> cases;
  for (const auto& row : rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "llm/tinystories_guided.expected.jsonl")) {
    Case c;
    const auto& e = corpus.at(row["seed"].get<std::size_t>());
    c.seed = e.text;
    c.where = e.where;
    c.g = row["g"].get<double>();
    c.x1_want = row["step1"]["text"].get<std::string>();
    c.n1 = row["step1"]["ids"].size();
    c.x2_want = row["step2"]["text"].get<std::string>();
    c.n2 = row["step2"]["ids"].size();
    c.hit1 = c.n1 == kMaxNew && row["step1"]["ids"].back() != 2;
    c.hit2 = c.n2 == kMaxNew && row["step2"]["ids"].back() != 2;
    cases.push_back(c);
  }
  return cases;
}

// Step 1 for every seed, then step 2 (positive = x1, negative = seed) for every seed and g, in
// generators of the given batch size; returns {x1 per case, x2 per case}.
std::pair<std::vector<StepResult>, std::vector<StepResult>> run_chains(const std::vector<Case>& cases, std::size_t batch,
                                                                       bool reversed) {
  std::vector<StepResult> r1(cases.size()), r2(cases.size());
  std::map<double, std::vector<std::size_t>> by_g;
  for (std::size_t i = 0; i < cases.size(); ++i) by_g[cases[i].g].push_back(i);
  for (const auto& [g, idx] : by_g) {
    auto gen = make_llm_generator(options(g, batch));
    std::vector<StepRequest> step1, step2;
    for (std::size_t i : idx) step1.push_back({.ticket = i, .current = cases[i].seed, .previous = cases[i].seed, .chain_id = i, .step = 1});
    if (reversed) std::reverse(step1.begin(), step1.end());
    for (auto& [t, r] : run_all(*gen, step1)) r1[t] = r;
    for (std::size_t i : idx) step2.push_back({.ticket = i, .current = r1[i].text, .previous = cases[i].seed, .chain_id = i, .step = 2});
    if (reversed) std::reverse(step2.begin(), step2.end());
    for (auto& [t, r] : run_all(*gen, step2)) r2[t] = r;
  }
  return {r1, r2};
}

TEST(LlmGeneratorTinyStories, TwoStepGuidedChainsMatchTransformers) {
  auto cases = fixture_cases();
  ASSERT_EQ(cases.size(), 12u);
  auto [r1, r2] = run_chains(cases, 4, false);
  int mismatches = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    EXPECT_FALSE(r1[i].text.empty());
    EXPECT_FALSE(r2[i].text.empty());
    const bool ok = r1[i].text == c.x1_want && r1[i].new_tokens == c.n1 && r2[i].text == c.x2_want && r2[i].new_tokens == c.n2 &&
                    r1[i].hit_token_limit == c.hit1 && r2[i].hit_token_limit == c.hit2;
    if (!ok && ++mismatches <= 4) {
      ADD_FAILURE() << c.where << " g=" << c.g << "\n x1 want (" << c.n1 << ") '" << c.x1_want << "'\n x1 got  (" << r1[i].new_tokens
                    << ") '" << r1[i].text << "'\n x2 want (" << c.n2 << ") '" << c.x2_want << "'\n x2 got  (" << r2[i].new_tokens << ") '"
                    << r2[i].text << "'";
    }
  }
  EXPECT_EQ(mismatches, 0) << mismatches << "/" << cases.size() << " chains differ from transformers";
}

TEST(LlmGeneratorTinyStories, DeterministicAndIndependentOfBatching) {
  auto cases = fixture_cases();
  auto [a1, a2] = run_chains(cases, 4, false);
  auto [b1, b2] = run_chains(cases, 4, false);
  auto [c1, c2] = run_chains(cases, 1, true);
  auto [d1, d2] = run_chains(cases, 16, true);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(a1[i].text, b1[i].text) << "rerun, " << cases[i].where;
    EXPECT_EQ(a2[i].text, b2[i].text) << "rerun, " << cases[i].where;
    EXPECT_EQ(a1[i].text, c1[i].text) << "batch 1, " << cases[i].where;
    EXPECT_EQ(a2[i].text, c2[i].text) << "batch 1, " << cases[i].where;
    EXPECT_EQ(a1[i].text, d1[i].text) << "batch 16, " << cases[i].where;
    EXPECT_EQ(a2[i].text, d2[i].text) << "batch 16, " << cases[i].where;
  }
  // Guidance steers: step 2 differs between g = 1.5 and g = 3 for some seed, and from g = 1.
  bool differs = false;
  for (std::size_t i = 0; i + 1 < cases.size(); i += 2) differs |= a2[i].text != a2[i + 1].text;
  EXPECT_TRUE(differs);
  auto unguided = make_llm_generator(options(1.0, 4));
  std::vector<StepRequest> reqs;
  for (std::size_t i = 0; i < cases.size(); i += 2) reqs.push_back({.ticket = i, .current = a1[i].text, .previous = cases[i].seed, .chain_id = i, .step = 2});
  bool differs_from_unguided = false;
  for (auto& [t, r] : run_all(*unguided, reqs)) differs_from_unguided |= r.text != a2[t].text;
  EXPECT_TRUE(differs_from_unguided);
}

// Prompt prefix reuse (the instruction's keys/values copied between slots) changes nothing.
TEST(LlmGeneratorTinyStories, SharedPromptPrefixGivesTheSameChains) {
  auto cases = fixture_cases();
  std::vector<StepRequest> reqs;
  for (std::size_t i = 0; i < cases.size(); ++i)
    reqs.push_back({.ticket = i, .current = cases[i].x1_want, .previous = cases[i].seed, .chain_id = i, .step = 2});
  std::map<bool, std::map<std::uint64_t, StepResult>> out;
  for (bool share : {true, false}) {
    LlmGeneratorOptions o = options(1.5, 4);
    o.share_prefix = share;
    auto gen = make_llm_generator(o);
    out[share] = run_all(*gen, reqs);
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(out[true][i].text, out[false][i].text) << cases[i].where;
    EXPECT_EQ(out[true][i].new_tokens, out[false][i].new_tokens) << cases[i].where;
  }
}

TEST(LlmGeneratorTinyStories, NameAndBf16) {
  auto gen = make_llm_generator(options(1.5, 2));
  EXPECT_EQ(gen->model_name(), "tinystories-656k");
  EXPECT_DOUBLE_EQ(gen->guidance(), 1.5);
  auto o = options(1.5, 2);
  o.dtype = rankemb::Dtype::BFloat16;
  auto bf = make_llm_generator(o);
  auto got = run_all(*bf, {{.ticket = 1, .current = "A dog runs.", .previous = "A cat sleeps.", .chain_id = 1, .step = 2}});
  EXPECT_FALSE(got[1].text.empty());
  EXPECT_GT(got[1].new_tokens, 0u);
}

}  // namespace
