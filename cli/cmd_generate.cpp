// rankemb generate: ranking chains from seed sentences, with an in-process LLM and
// classifier-free guidance (issue 6) or the offline lexical backend (issue 7).
#include "cli.h"

namespace rankemb::cli {

namespace {
struct GenerateArgs {
  std::string model, seeds, output, backend = "llm", prompt, chat_template = "auto", shard;
  int steps = 32, max_new_tokens = 100, batch = 16, seed = 0;
  double guidance = 1.5, temperature = 0.0, top_p = 1.0;
  bool resume = false;
};
}  // namespace

void register_generate(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = root.add_subcommand("generate", "Generate ranking chains whose meaning drifts step by step from each seed");
  cmd->add_option("--backend", a->backend, "llm (a local decoder) or lexical (offline: WordNet + GloVe edits)")->check(CLI::IsMember({"llm", "lexical"}));
  cmd->add_option("-m,--model", a->model, "Decoder model directory (Llama/Mistral/Qwen2/Qwen3, Hugging Face layout)");
  cmd->add_option("--seeds", a->seeds, "Seed sentences, one per line")->required();
  cmd->add_option("-o,--output", a->output, "Output JSONL, one chain per line")->required();
  cmd->add_option("--steps", a->steps, "Sentences generated per chain (n)");
  cmd->add_option("--guidance", a->guidance, "Guidance scale g (1 = unconstrained)");
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Token limit per generated sentence");
  cmd->add_option("--batch", a->batch, "Chains decoded together (continuous batching)");
  cmd->add_option("--prompt", a->prompt, "Prompt template file with {sentence} (default: the paper's prompt)");
  cmd->add_option("--chat-template", a->chat_template, "auto, llama3, chatml or none")->check(CLI::IsMember({"auto", "llama3", "chatml", "none"}));
  cmd->add_option("--temperature", a->temperature, "0 = greedy");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling threshold");
  cmd->add_option("--seed", a->seed, "Random seed");
  cmd->add_option("--shard", a->shard, "i/N: process only the i-th of N seed shards");
  cmd->add_flag("--resume", a->resume, "Continue an interrupted run without losing or duplicating chains");
  cmd->callback([a, &rc] { not_implemented_yet("generate", 6); });
}

}  // namespace rankemb::cli
