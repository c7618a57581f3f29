// Fuzzes config.json parsing (models/config.cpp): any bytes -> JSON -> HfConfig. Only
// nlohmann's parse_error (not JSON) and rankemb::Error (a field with the wrong type, a value out of
// range, an unknown model_type) are expected failures. An accepted config must satisfy what the
// model builders rely on before they allocate: positive sizes within the parser's caps, heads that
// divide the width, a known model type.
//
// The parser, the registry and its one-line-per-arch list are libtorch-free; the encoder build
// functions that list points at live in libtorch code, so this target defines them as traps: the
// parser never calls them, and a call would abort.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rankemb/models/config.h"
#include "rankemb/models/registry.h"
#include "rankemb/util/error.h"

namespace rankemb::models {
std::shared_ptr<EncoderNetwork> build_bert(const HfConfig&, WeightStore&) { std::abort(); }
std::shared_ptr<EncoderNetwork> build_mpnet(const HfConfig&, WeightStore&) { std::abort(); }
std::shared_ptr<EncoderNetwork> build_use_lite(const HfConfig&, WeightStore&) { std::abort(); }
}  // namespace rankemb::models

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_accepted(const rankemb::models::HfConfig& c) {
  check(rankemb::models::arch_registry().find(c.model_type) != nullptr);
  check(c.hidden_size > 0 && c.hidden_size <= (1 << 17));
  check(c.num_hidden_layers > 0 && c.num_hidden_layers <= 1024);
  check(c.num_attention_heads > 0 && c.vocab_size > 0 && c.vocab_size <= (1 << 24));
  check(c.head_dim > 0 && c.head_dim <= (1 << 17));
  if (c.is_decoder()) check(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0);
  if (c.model_type == "mpnet") check(c.relative_attention_num_buckets >= 32 && c.max_position_embeddings > 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  try {
    check_accepted(rankemb::models::parse_hf_config(doc, "fuzz/config.json"));
  } catch (const rankemb::Error&) {
  }
  return 0;
}
