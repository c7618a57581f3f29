// The builtin architectures: one line per arch (see docs in registry.h). Adding an encoder = a new
// arch/<name>.cpp with its build function declared in registry.h + one line here + a fixture.
// The decoders share one implementation (causal_lm.cpp), which the model_type tunes.
#include "rankemb/models/registry.h"

namespace rankemb::models {

void register_builtin_archs(ArchRegistry& r) {
  using enum ModelKind;
  using enum ConfigFamily;
  r.add({.name = "bert", .hf_model_types = {"bert"}, .kind = Encoder, .family = BertLike, .build_encoder = &build_bert});
  r.add({.name = "roberta", .hf_model_types = {"roberta"}, .kind = Encoder, .family = BertLike, .build_encoder = &build_bert});
  r.add({.name = "mpnet", .hf_model_types = {"mpnet"}, .kind = Encoder, .family = BertLike, .build_encoder = &build_mpnet});
  r.add({.name = "llama", .hf_model_types = {"llama", "mistral", "qwen2", "qwen3"}, .kind = Decoder, .family = LlamaLike});
  r.add({.name = "use-lite", .hf_model_types = {"use-lite"}, .kind = Encoder, .family = UseLite, .build_encoder = &build_use_lite});
}

}  // namespace rankemb::models
