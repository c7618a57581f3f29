// rankemb train: post-train an encoder on ranking chains with the ranking distillation loss
// (frozen teacher + chain-order refinement + ListMLE), keeping the best checkpoint by dev STS. (issue 5)
#include <chrono>
#include <memory>

#include "cli.h"
#include "rankemb/chains/training.h"
#include "rankemb/dist/env.h"
#include "rankemb/dist/group.h"
#include "rankemb/dist/launch.h"
#include "rankemb/io/file.h"
#include "rankemb/train/trainer.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/progress.h"

namespace rankemb::cli {

namespace {
struct TrainArgs {
  std::string student, teacher, chains, output, refine = "paper", data_dir, text = "senteval", pooler;
  Dtype dtype = Dtype::Float32;
  Device device;
  double lr = 3e-6, temp = 0.05, tau2 = 0.05, omega = 0.5, weight_decay = 0.0, clip = 1.0;
  int batch = 1, length_buckets = 1, epochs = 1, max_length = 32, eval_steps = 25, seed = 2024, warmup = 0, checkpoint_steps = 0;
  long max_steps = 0;
  int nproc = 0, dist_timeout = 600;
  bool resume = false, no_eval = false, mlp_only_train = false, skip_malformed = false;
};

// The command line minus --nproc (each rank runs the rest).
std::vector<std::string> args_without_nproc() {
  std::vector<std::string> args;
  const auto& all = command_args();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i] == "--nproc") {
      ++i;
      continue;
    }
    if (all[i].rfind("--nproc=", 0) == 0) continue;
    args.push_back(all[i]);
  }
  return args;
}

// Under a launcher (torchrun, a Slurm wrapper, --nproc) with more than one rank: joins the
// process group; ranks other than 0 log warnings and errors only, every line says its rank.
std::shared_ptr<dist::Group> join_group(int timeout_s) {
  const auto env = dist::launch_env();
  if (!env || env->world_size == 1) return nullptr;
  log::set_origin(fmt::format("[rank {}] ", env->rank));
  if (env->rank != 0 && log::level() > log::Level::Warn) log::set_level(log::Level::Warn);
  log::info("joining {} ranks at {}:{}", env->world_size, env->master_addr, env->master_port);
  return std::make_shared<dist::Group>(*env, std::chrono::seconds(timeout_s));
}

int run_train(const TrainArgs& a) {
  if (a.nproc > 0) {
    RANKEMB_CHECK(!dist::launch_env(), ErrorCode::Usage,
                  "--nproc starts its own ranks; under a launcher (RANK/WORLD_SIZE set) leave it out");
    return dist::run_local_ranks(a.nproc, args_without_nproc());
  }
  // The run directory takes best/ and checkpoint/: it must not be the student, the teacher or the chains.
  io::check_not_an_input(a.output, {a.chains, a.student, a.teacher});
  // A run must not silently train on less than it was given: a malformed record is an error
  // (exit 3, naming file:line) unless the user chose to skip them.
  chains::ChainFile file = chains::read_chains(a.chains, {.strict = !a.skip_malformed});
  if (!file.malformed.empty()) {
    log::warn("{}: skipped {} malformed record(s), first: {}", a.chains, file.malformed.size(), file.malformed.front());
  }
  if (file.n_dropped > 0) log::info("{}: {} chain(s) marked kept=false were left out", a.chains, file.n_dropped);

  train::TrainOptions o;
  o.student = a.student;
  o.teacher = a.teacher;
  o.output_dir = a.output;
  o.loss.temp = a.temp;
  o.loss.tau2 = a.tau2;
  o.loss.omega = a.omega;
  o.loss.mode = train::parse_refine_mode(a.refine);
  o.lr = a.lr;
  o.weight_decay = a.weight_decay;
  o.warmup_steps = a.warmup;
  o.clip = a.clip;
  o.seed = static_cast<std::uint64_t>(a.seed);
  o.batch = a.batch;
  o.epochs = a.epochs;
  o.max_length = a.max_length;
  o.dtype = a.dtype;
  o.device = dist::rank_device(a.device);
  if (a.max_steps > 0) o.max_steps = a.max_steps;
  o.eval_steps = a.eval_steps;
  o.evaluate = !a.no_eval;
  o.data_dir = a.data_dir;
  o.text = eval::parse_text_variant(a.text);
  o.checkpoint_steps = a.checkpoint_steps;
  o.resume = a.resume;
  if (!a.pooler.empty()) o.pooler = models::parse_pooler(a.pooler);
  o.mlp_only_train = a.mlp_only_train;
  o.length_buckets = a.length_buckets;

  log::info("training {} on {} chains from {} (teacher {}, {}, lr {}, batch {}, {} epoch(s))", a.student,
            file.chains.size(), a.chains, a.teacher.empty() ? "a frozen copy of the student" : a.teacher, dtype_name(a.dtype), a.lr,
            a.batch, a.epochs);
  o.group = join_group(a.dist_timeout);
  const bool leader = !o.group || o.group->rank() == 0;
  train::Trainer trainer(std::move(file.chains), o);
  std::unique_ptr<Progress> progress = leader ? make_progress() : std::make_unique<NullProgress>();
  train::TrainResult r = trainer.run(*progress);
  if (r.best_score) {
    log::info("done: {} steps in {:.1f}s; best dev score {:.4f} at step {} -> {}", r.steps_done, r.seconds, *r.best_score,
              r.best_step, (o.output_dir / "best").string());
  } else {
    log::info("done: {} steps in {:.1f}s -> {}", r.steps_done, r.seconds, (o.output_dir / "best").string());
  }
  return 0;
}
}  // namespace

void register_train(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = root.add_subcommand("train", "Refine an encoder on ranking chains (ranking distillation + ListMLE)");
  cmd->add_option("--student", a->student, "Model directory of the encoder to refine")->required();
  cmd->add_option("--teacher", a->teacher, "Frozen teacher model directory (default: a frozen copy of the student)");
  cmd->add_option("--chains", a->chains, "Chains: rankemb JSONL or the authors' CSV (list_sent column)")->required();
  cmd->add_option("-o,--output", a->output,
                  "Output run directory: best/ (best model, HF layout), checkpoint/, metrics.jsonl, curve.svg")
      ->required();
  cmd->add_option("--lr", a->lr, "AdamW learning rate (linear decay to 0 at the last step)")->check(non_negative());
  cmd->add_option("--weight-decay", a->weight_decay, "AdamW weight decay")->check(non_negative());
  cmd->add_option("--warmup", a->warmup, "Linear warm-up steps (0 = none)")->check(non_negative());
  cmd->add_option("--clip", a->clip, "Max gradient L2 norm (0 = no clipping)")->check(non_negative());
  cmd->add_option("--temp", a->temp, "Student temperature")->check(positive());
  cmd->add_option("--tau2", a->tau2, "Teacher temperature")->check(positive());
  cmd->add_option("--omega", a->omega, "Weight of the chain-order refinement (0 = teacher order only)");
  cmd->add_option("--refine", a->refine, "Refinement: paper (authors' code) or relative (paper's prose)")->check(CLI::IsMember({"paper", "relative"}));
  cmd->add_option("--batch", a->batch, "Chains per step")->check(positive());
  cmd->add_option("--length-buckets", a->length_buckets,
                  "Run each step's student forward in this many length-sorted groups, each padded to its own "
                  "longest (faster; 1 = pad the batch to its longest, as the authors do)")
      ->check(positive());
  cmd->add_option("--epochs", a->epochs, "Passes over the chains")->check(positive());
  cmd->add_option("--max-steps", a->max_steps, "Run exactly this many steps (overrides --epochs; 0 = by epochs)")->check(non_negative());
  cmd->add_option("--max-length", a->max_length, "Max tokens per sentence (student and teacher)")->check(in_range(2, 1 << 20));
  cmd->add_option("--eval-steps", a->eval_steps, "Evaluate dev STS every this many steps (and at the end)")->check(positive());
  cmd->add_flag("--no-eval", a->no_eval, "Skip dev evaluation; best/ is then the final model");
  cmd->add_option("--data-dir", a->data_dir, "Data directory with STS-B dev and SICK-R dev (default: $RANKEMB_DATA_DIR or ../shared/data)");
  cmd->add_option("--text", a->text, "Dev text variant: senteval or raw")->check(CLI::IsMember({"senteval", "raw"}));
  cmd->add_option("--checkpoint-steps", a->checkpoint_steps, "Write the resumable checkpoint every this many steps (0 = every --eval-steps)")->check(non_negative());
  cmd->add_option("--seed", a->seed, "Random seed (chain order, dropout, ListMLE tie-breaking)");
  add_dtype_option(cmd, a->dtype, "float32, or bfloat16 autocast (float32 weights)");
  add_device_option(cmd, a->device);
  cmd->add_option("--pooler", a->pooler,
                  "Student pooling: cls, cls_before_pooler, avg, avg_first_last, avg_top2, max (default: the model's own)")
      ->check(CLI::IsMember({"cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2", "max"}));
  cmd->add_flag("--mlp-only-train", a->mlp_only_train,
                "SimCSE's mlp_only_train for [CLS] students: a fresh dense+tanh head over [CLS] in training only; "
                "evaluation and the exported model use the raw [CLS] vector");
  cmd->add_flag("--skip-malformed", a->skip_malformed, "Leave out malformed chain records (listed as a warning) instead of stopping at the first");
  cmd->add_flag("--resume", a->resume, "Resume from the run directory's last checkpoint (same options required)");
  cmd->add_option("--nproc", a->nproc,
                  "Data-parallel on this machine: start this many ranks (like torchrun --nproc-per-node; --batch is "
                  "the global batch). Under torchrun or any launcher that sets RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, "
                  "leave it out: the ranks join by themselves")
      ->check(in_range(1, 256));
  cmd->add_option("--dist-timeout", a->dist_timeout,
                  "Seconds a rank waits for the others (joining, each collective, rank 0's dev evaluation) before the "
                  "job fails")
      ->check(in_range(1, 86400));
  cmd->callback([a, &rc] { rc = run_train(*a); });
}

}  // namespace rankemb::cli
