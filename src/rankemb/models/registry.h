// rankemb::models architecture registry, the one list of model types: one ArchSpec per
// architecture, matched against config.json's "model_type", saying whether it is an encoder or a
// decoder and which config.json fields it has. Config parsing (config.cpp), encoder loading
// (encoder.cpp), decoder loading (causal_lm.cpp) and the CLI ask it. Registration is explicit:
// register_builtin_archs() in models/arch/all.cpp has one line per arch, and arch_registry()
// calls it once (no self-registering statics, which vanish from static libraries).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb::models {

struct HfConfig;
class WeightStore;
class EncoderNetwork;

enum class ModelKind { Encoder, Decoder };

// Which config.json fields (and defaults) a model type has: parse_hf_config reads them.
enum class ConfigFamily { BertLike, LlamaLike, UseLite };

struct ArchSpec {
  std::string_view name;                         // "bert", "roberta", "mpnet", "use-lite"
  std::vector<std::string_view> hf_model_types;  // matched against config.json "model_type"
  ModelKind kind = ModelKind::Encoder;
  ConfigFamily family = ConfigFamily::BertLike;
  // Encoders: builds the network with its weights taken from the store (the caller runs
  // store.finish() afterwards).
  std::shared_ptr<EncoderNetwork> (*build_encoder)(const HfConfig&, WeightStore&) = nullptr;
};

class ArchRegistry {
 public:
  void add(ArchSpec spec);
  // nullptr when no arch claims the model type.
  const ArchSpec* find(std::string_view model_type) const;
  const std::vector<ArchSpec>& all() const { return specs_; }

 private:
  std::vector<ArchSpec> specs_;
};

// The builtin architectures (built on first use).
const ArchRegistry& arch_registry();
// Every model_type of the registry (of one kind), in registration order, for messages.
std::vector<std::string_view> model_types(std::optional<ModelKind> kind = std::nullopt);
// models/arch/all.cpp: one registry.add() line per architecture.
void register_builtin_archs(ArchRegistry& r);

// Build functions, one per arch file.
std::shared_ptr<EncoderNetwork> build_bert(const HfConfig& config, WeightStore& weights);  // arch/bert.cpp (also RoBERTa)
std::shared_ptr<EncoderNetwork> build_mpnet(const HfConfig& config, WeightStore& weights);  // arch/mpnet.cpp
std::shared_ptr<EncoderNetwork> build_use_lite(const HfConfig& config, WeightStore& weights);  // arch/use_lite.cpp

}  // namespace rankemb::models
