// Rendered chat prompts tokenized by our BPE, against Hugging Face tokenizers' ids for the same
// prompts (tests/fixtures/text/chat_template_ids.expected.jsonl, scripts/regen/chat_templates.py):
// the special tokens of the template (<|start_header_id|>, <|im_start|>, ...) must come out as
// single added-token ids, and the text around them as the model's BPE pieces.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/text/chat_template.h"
#include "rankemb/text/tokenizer.h"

namespace t = rankemb::text;

TEST(ChatTemplateIds, MatchReferenceTokenizers) {
  const auto& corpus = rankemb::test::parity_corpus();
  auto rows = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "text" / "chat_template_ids.expected.jsonl");
  ASSERT_EQ(rows.size(), 150u);
  const std::map<std::string, std::string> dirs = {{"llama3", "llama3-tokenizer/models"}, {"chatml", "qwen3-tokenizer/models"}};
  std::map<std::string, std::unique_ptr<t::Tokenizer>> tokenizers;
  std::map<std::string, std::string> bos;
  for (const auto& [format, dir] : dirs) {
    auto path = rankemb::test::asset(dir);
    tokenizers[format] = t::load_tokenizer(path);
    bos[format] = t::chat_bos_token(path);
  }
  std::size_t mismatches = 0;
  for (const auto& e : rows) {
    auto name = e["format"].get<std::string>();
    auto format = t::parse_chat_format(name);
    ASSERT_TRUE(format.has_value());
    const auto& entry = corpus.at(e["index"].get<std::size_t>());
    t::ChatOptions options;
    if (!e["system"].is_null()) options.system = e["system"].get<std::string>();
    if (!e["enable_thinking"].is_null()) options.enable_thinking = e["enable_thinking"].get<bool>();
    std::string prompt = t::render_user_turn(*format, entry.text, options, bos.at(name));
    auto got = tokenizers.at(name)->encode(prompt, {.add_special_tokens = false});
    auto want = e["ids"].get<std::vector<t::TokenId>>();
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << entry.where << " format=" << name << " enable_thinking=" << e["enable_thinking"]
                    << "\n prompt: " << nlohmann::json(prompt) << "\n expected: " << nlohmann::json(want)
                    << "\n got:      " << nlohmann::json(got);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << rows.size() << " tokenized prompts";
}
