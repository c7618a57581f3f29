// rankemb demo: the whole method offline on the embedded default: lexical chains from SNLI seeds,
// refine all-MiniLM-L6-v2, evaluate before/after on 7 STS tasks. (issue 7)
#include "cli.h"

namespace rankemb::cli {

void register_demo(CLI::App& root, ExitCode& rc) {
  auto out = std::make_shared<std::string>("runs/demo");
  auto* cmd = root.add_subcommand("demo", "Run the method end to end on the embedded default (offline, CPU)");
  cmd->add_option("-o,--output", *out, "Output directory for chains, model, logs and results");
  cmd->callback([&rc] { not_implemented_yet("demo", 7); });
}

}  // namespace rankemb::cli
