// rankemb info: what a model directory holds (architecture, config, tokenizer, tensors).
#include "cli.h"

namespace rankemb::cli {

void register_info(CLI::App& root, ExitCode& rc) {
  auto model = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand("info", "Describe a model directory: config, tokenizer, tensors");
  cmd->add_option("model", *model, "Model directory or .safetensors file")->required();
  cmd->callback([&rc] { not_implemented_yet("info", 2); });
}

}  // namespace rankemb::cli
