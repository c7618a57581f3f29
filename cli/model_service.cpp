#include "model_service.h"

#include "cli.h"
#include "rankemb/llm/llm_generator.h"
#include "rankemb/models/embed.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

void add_encoder_options(CLI::App* cmd, EncoderChoice& c, bool model_required) {
  auto* m = cmd->add_option("-m,--model", c.model, "Encoder directory (Hugging Face or sentence-transformers layout)");
  if (model_required) m->required();
  cmd->add_option("--pooler", c.pooler, "Pooling (default: the model's own)");
  add_dtype_option(cmd, c.dtype, "Compute dtype: float32 or bfloat16");
  add_int8_option(cmd, c.int8);
  add_device_option(cmd, c.device);
  cmd->add_option("--batch", c.batch, "Sentences per model call chunk (length-sorted)")->check(in_range(1, 4096));
  cmd->add_option("--max-length", c.max_length, "Tokens per input, specials included (0 = the model's limit)")->check(in_range(0, 1 << 16));
}

std::unique_ptr<models::SentenceEncoder> load_chosen_encoder(const EncoderChoice& c) {
  models::LoadOptions load{.dtype = c.dtype, .device = c.device, .int8 = c.int8};
  if (!c.pooler.empty()) load.pooler = models::parse_pooler(c.pooler);
  auto encoder = models::load_encoder(c.model, load);
  log::info("model {}: pooler {}, dim {}, {}", c.model, models::pooler_name(encoder->pooler()), encoder->dim(),
            precision_name(c.dtype, c.int8));
  return encoder;
}

serve::EmbeddingModel embedding_model(models::SentenceEncoder& encoder, const EncoderChoice& c) {
  serve::EmbeddingModel m;
  m.id = std::filesystem::path(c.model).lexically_normal().string();
  m.dtype = precision_name(c.dtype, c.int8);
  // /info speaks TEI's vocabulary, where mean pooling is "mean"; rankemb's other names pass through.
  const std::string_view pooler = models::pooler_name(encoder.pooler());
  m.pooling = pooler == "avg" ? "mean" : std::string(pooler);
  m.dim = static_cast<std::size_t>(encoder.dim());
  const std::int64_t limit = c.max_length > 0 ? c.max_length : encoder.default_max_length();
  m.max_input_tokens = static_cast<std::size_t>(limit);
  const text::Tokenizer* tok = &encoder.tokenizer();
  m.count_tokens = [tok](const std::string& text) { return tok->encode(text).size(); };
  const models::EncodeOptions options{.batch = c.batch, .max_length = limit};
  static NullProgress quiet;  // stateless; the server reports through its metrics instead
  m.embed = models::encoder_embed_fn(encoder, options, quiet);
  return m;
}

std::string drift_guard_encoder(const std::string& given, bool small) {
  if (given == "none") return "";
  if (!given.empty() || !small) return given;
  const std::string teacher = default_teacher().string();
  RANKEMB_CHECK(std::filesystem::exists(teacher), ErrorCode::Usage,
                "the small-model loop's drift guard needs the embedded teacher {} (bash scripts/fetch-assets.sh fetches it); "
                "or give --drift-guard ENCODER, or --drift-guard none", teacher);
  return teacher;
}

generate::DriftGuard drift_guard(models::SentenceEncoder& encoder, const std::string& path, double margin, double max_drop) {
  // The meta records the directory's name, not its path, so that a moved cache still resumes and
  // shards made on machines with other paths still merge (as the LLM's name is recorded).
  return {.embed = models::per_text_embed_fn(encoder), .model = llm::model_name(path), .margin = margin,
          .max_drop = max_drop};
}

}  // namespace rankemb::cli
