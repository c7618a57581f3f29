// Fuzzes the request-body parsers of `rankemb serve` (serve/api.cpp): the first byte picks the
// endpoint (/v1/embeddings, /embed, /rerank, /search, /v1/completions, /v1/chains), the rest is
// the body. The only expected
// failure is ApiError with a 4xx status and a message; an accepted request must honour the limits
// the server relies on before it tokenizes or allocates (inputs per request, bytes per input, k,
// prompts, max_tokens, steps, stop strings, the sampling ranges),
// and every error must render into both dialects' error bodies as valid JSON.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rankemb/serve/api.h"

namespace {

using namespace rankemb::serve;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_texts(const std::vector<std::string>& texts, const Limits& limits) {
  check(!texts.empty() && texts.size() <= limits.max_inputs);
  for (const auto& t : texts) check(t.size() <= limits.max_input_bytes);
}

void check_error(const ApiError& e) {
  check(e.status >= 400 && e.status < 500 && e.what()[0] != '\0');
  for (Dialect d : {Dialect::OpenAi, Dialect::Tei}) {
    auto body = nlohmann::json::parse(error_body(d, e.status, e.what(), e.field), nullptr, false);
    check(body.is_object());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  Limits limits;
  limits.max_inputs = 8;
  limits.max_input_bytes = 256;
  LlmLimits llm;
  llm.max_prompts = 4;
  llm.max_prompt_bytes = 256;
  llm.max_tokens = 64;
  llm.max_steps = 16;
  try {
    switch (data[0] % 6) {
      case 0: {
        auto r = parse_embeddings_request(body, limits);
        check_texts(r.inputs, limits);
        if (r.dimensions) check(*r.dimensions > 0);
        break;
      }
      case 1: check_texts(parse_embed_request(body, limits).inputs, limits); break;
      case 2: {
        auto r = parse_rerank_request(body, limits);
        check_texts(r.texts, limits);
        check(r.query.size() <= limits.max_input_bytes);
        break;
      }
      case 3: {
        auto r = parse_search_request(body, limits);
        check_texts(r.queries, limits);
        check(r.k > 0);
        break;
      }
      case 4: {
        auto r = parse_completion_request(body, llm);
        check(!r.prompts.empty() && r.prompts.size() <= llm.max_prompts);
        for (const auto& p : r.prompts) check(p.size() <= llm.max_prompt_bytes);
        check(r.negative_prompt.size() <= llm.max_prompt_bytes);
        check(r.max_tokens >= 1 && r.max_tokens <= llm.max_tokens);
        check(r.temperature >= 0 && r.temperature <= 2 && r.top_p > 0 && r.top_p <= 1);
        check(r.guidance_scale >= 0 && r.guidance_scale <= 100 && (r.guidance_scale == 1 || !r.negative_prompt.empty()));
        check(r.stop.size() <= kMaxStopStrings);
        for (const auto& s : r.stop) check(!s.empty() && s.size() <= llm.max_prompt_bytes);
        break;
      }
      case 5: {
        auto r = parse_chain_request(body, llm);
        check(!r.seed.empty() && r.seed.size() <= llm.max_prompt_bytes && r.seed.find('\n') == std::string::npos);
        check(r.steps >= 1 && r.steps <= llm.max_steps);
        check(!r.max_tokens || (*r.max_tokens >= 1 && *r.max_tokens <= llm.max_tokens));
        check(r.temperature >= 0 && r.temperature <= 2 && r.top_p > 0 && r.top_p <= 1);
        break;
      }
    }
  } catch (const ApiError& e) {
    check_error(e);
  }
  return 0;
}
