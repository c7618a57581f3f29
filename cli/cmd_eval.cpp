// rankemb eval: STS12-16 / STS-B / SICK-R, transfer tasks and reranking with the paper's
// protocol; a table on stderr-free stdout and full results as JSON. (issue 4)
#include "cli.h"

namespace rankemb::cli {

namespace {
struct EvalArgs {
  std::string model, compare, tasks = "sts", pooler, dtype = "float32", data_dir, output, text = "senteval";
  int batch = 64;
};
}  // namespace

void register_eval(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = root.add_subcommand("eval", "Evaluate an encoder on STS, transfer and reranking tasks");
  cmd->add_option("-m,--model", a->model, "Model directory")->required();
  cmd->add_option("--compare", a->compare, "Second model directory: print both side by side with deltas");
  cmd->add_option("--tasks", a->tasks, "Comma-separated: sts, transfer, rerank, dev, or single task names (sts12, stsb, mr, ...)");
  cmd->add_option("--text", a->text, "STS text variant: senteval (paper-comparable) or raw")->check(CLI::IsMember({"senteval", "raw"}));
  cmd->add_option("--pooler", a->pooler, "Pooling override (cls, cls_before_pooler, avg, avg_first_last, avg_top2)");
  cmd->add_option("--batch", a->batch, "Sentences per batch")->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", a->dtype, "float32 or bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_option("--data-dir", a->data_dir, "Benchmark data directory (default: $RANKEMB_DATA_DIR or ../shared/data)");
  cmd->add_option("--json", a->output, "Write the full results as JSON to this file");
  cmd->callback([a, &rc] { not_implemented_yet("eval", 4); });
}

}  // namespace rankemb::cli
