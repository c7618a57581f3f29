// The builtin architectures: one line per arch (see docs in registry.h). Adding an arch = a new
// arch/<name>.cpp with its build function declared in registry.h + one line here + a fixture.
#include "rankemb/models/registry.h"

namespace rankemb::models {

void register_builtin_archs(ArchRegistry& r) {
  r.add({.name = "bert", .hf_model_types = {"bert"}, .kind = ModelKind::Encoder, .build_encoder = &build_bert});
  r.add({.name = "roberta", .hf_model_types = {"roberta"}, .kind = ModelKind::Encoder, .build_encoder = &build_bert});
  r.add({.name = "use-lite", .hf_model_types = {"use-lite"}, .kind = ModelKind::Encoder, .build_encoder = &build_use_lite});
}

}  // namespace rankemb::models
