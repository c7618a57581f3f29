#include "rankemb/models/registry.h"

#include <algorithm>

namespace rankemb::models {

void ArchRegistry::add(ArchSpec spec) { specs_.push_back(std::move(spec)); }

const ArchSpec* ArchRegistry::find(std::string_view model_type) const {
  for (const auto& s : specs_) {
    if (std::find(s.hf_model_types.begin(), s.hf_model_types.end(), model_type) != s.hf_model_types.end()) return &s;
  }
  return nullptr;
}

const ArchRegistry& arch_registry() {
  static const ArchRegistry registry = [] {
    ArchRegistry r;
    register_builtin_archs(r);
    return r;
  }();
  return registry;
}

std::vector<std::string_view> model_types(std::optional<ModelKind> kind) {
  std::vector<std::string_view> names;
  for (const auto& s : arch_registry().all())
    if (!kind || s.kind == *kind) names.insert(names.end(), s.hf_model_types.begin(), s.hf_model_types.end());
  return names;
}

}  // namespace rankemb::models
