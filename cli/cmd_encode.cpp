// rankemb encode: sentences (one per line) -> embeddings as .npy or JSONL. (issue 3)
#include "cli.h"

namespace rankemb::cli {

namespace {
struct EncodeArgs {
  std::string model, input = "-", output, format = "auto", pooler, dtype = "float32";
  int batch = 64, max_length = 256;
  bool normalize = false;
};
}  // namespace

void register_encode(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<EncodeArgs>();
  auto* cmd = root.add_subcommand("encode", "Encode sentences (one per line) into embeddings (.npy or JSONL)");
  cmd->add_option("-m,--model", a->model, "Model directory (Hugging Face or sentence-transformers layout, or converted USE-Lite)")->required();
  cmd->add_option("input", a->input, "Input file, one sentence per line ('-' = stdin)");
  cmd->add_option("-o,--output", a->output, "Output file (.npy float32 matrix, or .jsonl); '-' = JSONL on stdout");
  cmd->add_option("--format", a->format, "Output format: auto (by extension), npy, jsonl")->check(CLI::IsMember({"auto", "npy", "jsonl"}));
  cmd->add_option("--pooler", a->pooler, "Pooling: cls, cls_before_pooler, avg, avg_first_last, avg_top2 (default: the model's own)");
  cmd->add_option("--batch", a->batch, "Sentences per batch (batches are sorted by length)")->check(CLI::PositiveNumber);
  cmd->add_option("--max-length", a->max_length, "Truncate inputs to this many tokens")->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", a->dtype, "Compute dtype: float32 or bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_flag("--normalize", a->normalize, "L2-normalize the embeddings");
  cmd->callback([a, &rc] { not_implemented_yet("encode", 3); });
}

}  // namespace rankemb::cli
