// rankemb train: post-train an encoder on ranking chains with the ranking distillation loss
// (frozen teacher + chain-order refinement + ListMLE), keeping the best checkpoint by dev STS. (issue 5)
#include "cli.h"

namespace rankemb::cli {

namespace {
struct TrainArgs {
  std::string student, teacher, chains, output, refine = "paper", dtype = "float32";
  double lr = 3e-6, temp = 0.05, tau2 = 0.05, omega = 0.5, weight_decay = 0.0, clip = 1.0;
  int batch = 1, epochs = 1, max_length = 32, eval_steps = 25, seed = 2024;
  bool resume = false;
};
}  // namespace

void register_train(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = root.add_subcommand("train", "Refine an encoder on ranking chains (ranking distillation + ListMLE)");
  cmd->add_option("--student", a->student, "Model directory of the encoder to refine")->required();
  cmd->add_option("--teacher", a->teacher, "Frozen teacher model directory (default: a frozen copy of the student)");
  cmd->add_option("--chains", a->chains, "Chains: rankemb JSONL or the authors' CSV (list_sent column)")->required();
  cmd->add_option("-o,--output", a->output, "Output run directory (best model, logs, curve)")->required();
  cmd->add_option("--lr", a->lr, "AdamW learning rate (linear decay, no warm-up)");
  cmd->add_option("--temp", a->temp, "Student temperature");
  cmd->add_option("--tau2", a->tau2, "Teacher temperature");
  cmd->add_option("--omega", a->omega, "Weight of the chain-order refinement (0 = teacher order only)");
  cmd->add_option("--refine", a->refine, "Refinement: paper (authors' code) or relative (paper's prose)")->check(CLI::IsMember({"paper", "relative"}));
  cmd->add_option("--batch", a->batch, "Chains per step");
  cmd->add_option("--epochs", a->epochs, "Passes over the chains");
  cmd->add_option("--max-length", a->max_length, "Max tokens per sentence");
  cmd->add_option("--eval-steps", a->eval_steps, "Evaluate dev STS every this many steps");
  cmd->add_option("--seed", a->seed, "Random seed");
  cmd->add_option("--dtype", a->dtype, "float32, or bfloat16 autocast")->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_flag("--resume", a->resume, "Resume from the run directory's last checkpoint");
  cmd->callback([a, &rc] { not_implemented_yet("train", 5); });
}

}  // namespace rankemb::cli
