// rankemb convert: bring models into Hugging Face layout (config.json + model.safetensors +
// tokenizer files). use-lite: the npm USE-Lite TF.js graph and weight shards. (issue 3)
#include "cli.h"
#include "rankemb/models/convert_use_lite.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

void register_convert(CLI::App& root, ExitCode& rc) {
  auto* cmd = root.add_subcommand("convert", "Convert models into Hugging Face layout");
  cmd->require_subcommand(1);
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto* use = cmd->add_subcommand("use-lite", "Universal Sentence Encoder Lite (TF.js graph + shards) -> safetensors directory");
  use->add_option("input", *in, "Directory with model.json, group1-shard*of7 and vocab.json")->required();
  use->add_option("-o,--output", *out, "Output model directory")->required();
  use->callback([in, out, &rc] {
    auto r = models::convert_use_lite(*in, *out);
    log::info("wrote {} ({} layers, {} tensors, {} parameters)", *out, r.n_layers, r.n_tensors, r.n_params);
    rc = 0;
  });
}

}  // namespace rankemb::cli
