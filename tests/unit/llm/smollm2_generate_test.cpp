// The guided LLM backend on the embedded LLM (SmolLM2-135M-Instruct, GGUF Q4_1): three-step chains
// under both chain presets ("paper" and "small-llm") against Hugging Face transformers running the
// same loop on the same file (tests/fixtures/llm/smollm2_guided.expected.jsonl from
// scripts/regen/llm_guided_smollm2.py: gguf-py-dequantized float32 weights, the prompt rendered by
// the file's own chat template with Python jinja2, transformers' tokenizer converted from the GGUF).
// Every step must match: text, token count, and whether it stopped at the token limit. Each step
// rewrites rankemb's own previous output, so a difference carries forward and is not hidden.
#include "rankemb/llm/llm_generator.h"

#include <gtest/gtest.h>

#include <map>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "run_requests.h"

using namespace rankemb::generate;
using namespace rankemb::llm;

using rankemb::test::run_all;

namespace {

constexpr int kMaxNew = 48;       // as in the fixture
constexpr std::int64_t kEos = 2;  // <|im_end|>

struct Want {
  std::string text;
  std::size_t tokens = 0;
  bool hit_limit = false;
};

struct Chain {
  std::string preset, seed, where;
  std::vector<Want> steps;
};

std::vector<Chain> fixture_chains() {
  const auto& corpus = rankemb::test::parity_corpus();
  std::vector<Chain> chains;
  for (const auto& row : rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "llm/smollm2_guided.expected.jsonl")) {
    Chain c;
    c.preset = row["preset"].get<std::string>();
    const auto& e = corpus.at(row["seed"].get<std::size_t>());
    c.seed = e.text;
    c.where = e.where;
    for (const auto& s : row["steps"]) {
      const auto& ids = s["ids"];
      c.steps.push_back({s["text"].get<std::string>(), ids.size(), ids.size() == kMaxNew && ids.back() != kEos});
    }
    chains.push_back(std::move(c));
  }
  return chains;
}

TEST(LlmGeneratorSmolLM2, ThreeStepGuidedChainsMatchTransformersUnderBothPresets) {
  const auto chains = fixture_chains();
  ASSERT_EQ(chains.size(), 12u);
  std::map<std::string, std::vector<std::size_t>> by_preset;
  for (std::size_t i = 0; i < chains.size(); ++i) by_preset[chains[i].preset].push_back(i);
  ASSERT_EQ(by_preset.size(), 2u);

  int steps = 0, mismatches = 0;
  for (const auto& [preset, idx] : by_preset) {
    ChainPreset p = chain_preset(preset);
    p.generator.model_dir = rankemb::test::asset("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.generator.max_new_tokens = kMaxNew;
    p.generator.batch = 4;  // fewer than the chains: slots are reused within a step
    auto gen = make_llm_generator(p.generator);
    std::vector<std::string> previous, current;
    for (std::size_t i : idx) previous.push_back(chains[i].seed), current.push_back(chains[i].seed);
    for (int step = 1; step <= 3; ++step) {
      std::vector<StepRequest> requests;
      for (std::size_t k = 0; k < idx.size(); ++k)
        requests.push_back({.ticket = k, .current = current[k], .previous = previous[k], .chain_id = idx[k], .step = step});
      auto got = run_all(*gen, requests);
      for (std::size_t k = 0; k < idx.size(); ++k) {
        const Chain& c = chains[idx[k]];
        const Want& want = c.steps[step - 1];
        const StepResult& r = got[k];
        ++steps;
        if (r.text != want.text || r.new_tokens != want.tokens || r.hit_token_limit != want.hit_limit) {
          if (++mismatches <= 4)
            ADD_FAILURE() << preset << ", " << c.where << ", step " << step << "\n want (" << want.tokens << ") '" << want.text
                          << "'\n got  (" << r.new_tokens << ") '" << r.text << "'";
        }
        previous[k] = current[k];
        current[k] = r.text;
      }
    }
  }
  EXPECT_EQ(steps, 36);
  EXPECT_EQ(mismatches, 0) << mismatches << "/" << steps << " steps differ from transformers";
}

}  // namespace
