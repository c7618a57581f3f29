// The stage-2 training loop (../shared/docs/METHOD.md, "Stage 2"; issue 5): refines a sentence
// encoder (the student) on ranking chains with the ranking distillation loss of ranking_loss.h
// against a frozen teacher, with AdamW, a linear learning-rate schedule, grad-norm clipping,
// periodic dev-STS evaluation keeping the best model, per-step JSONL metrics, a training-curve
// SVG, and a resumable checkpoint.
//
// Run directory layout (TrainOptions::output_dir):
//   best/             the best model by dev score, a Hugging Face / sentence-transformers directory
//   checkpoint/       resumable state: model.safetensors (student weights), optimizer.pt (AdamW
//                     state, libtorch's serialization), rng.safetensors (generator states),
//                     state.json (step, best score, options fingerprint)
//   metrics.jsonl     {"type":"step",...} per step and {"type":"eval",...} per evaluation
//   curve.svg         loss and dev score against step, written at the end
//
// Data parallel (TrainOptions::group, dist/group.h): every rank walks the same steps; rank r
// takes the chains at positions r, r + N, ... of each step's batch, the loss is the batch mean as
// in one process (ListMLE's tie-breaking permutations are drawn for every chain of the batch on
// every rank, so each chain gets the permutation one process would give it), the gradients are
// summed over the ranks before clipping, and every rank applies the same AdamW update. Rank 0
// alone reads dev, evaluates, writes best/, checkpoint/ (with every rank's dropout generator)
// and metrics.jsonl; the dev score is broadcast so every rank follows its best-model decision.
// A dropout-free model ends with the weights one process with the same global batch reaches
// (float rounding aside); with dropout each rank draws its own masks.
//
// Determinism: the chain order of epoch e is a permutation drawn from (seed, e); dropout uses
// libtorch's default CPU generator, ListMLE tie-breaking its own generator, both seeded with
// `seed` after the models are built and both saved in the checkpoint. Evaluation consumes no
// random numbers, so a run resumed from step s ends with the same weights as an uninterrupted one.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <memory>

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "rankemb/eval/datasets.h"
#include "rankemb/models/encoder.h"
#include "rankemb/chains/training.h"
#include "rankemb/train/ranking_loss.h"
#include "rankemb/util/device.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::dist {
class Group;
}

namespace rankemb::train {

struct TrainOptions {
  std::filesystem::path student;     // model directory of the encoder to refine
  std::filesystem::path teacher;     // frozen teacher directory; empty = a frozen copy of the student
  std::filesystem::path output_dir;  // the run directory (layout above)
  LossOptions loss;                  // temp, tau2, omega, refine mode

  double lr = 3e-6;
  double weight_decay = 0.0;
  std::int64_t warmup_steps = 0;     // linear warm-up from 0, then linear decay to 0 at the last step
  double clip = 1.0;                 // max global grad L2 norm; <= 0 disables clipping (the norm is still logged)
  std::uint64_t seed = 2024;
  std::int64_t batch = 1;            // chains per step (each chain its own k x k block)
  std::int64_t epochs = 1;
  std::int64_t max_length = 32;      // tokens per sentence for student and teacher, specials included
  // Float32, or BFloat16: the forward pass of the student runs under CPU autocast to bfloat16
  // (weights and optimizer stay float32); the loss is computed in float32.
  Dtype dtype = Dtype::Float32;
  // Where student, teacher and the loss run (bfloat16 autocast on CUDA as on the CPU). The
  // checkpoint holds the CPU generators only, so a CUDA run resumes with fresh dropout draws.
  Device device;
  std::optional<std::int64_t> max_steps;  // caps the run; the schedule then decays over max_steps
  // The student's pooler (nullopt = the model directory's own); the teacher keeps its own.
  std::optional<models::Pooler> pooler;
  // SimCSE's mlp_only_train, as the authors' posttraining/models.py does it for pooler "cls": in
  // training the loss sees tanh(dense([CLS] state)) through an MLP head that is created fresh
  // (their BertForCL/RobertaForCL build the encoder without BERT's pooler and load no weights
  // into `mlp`, so transformers initializes it: weight ~ N(0, initializer_range), bias 0);
  // evaluation, export and encode use the raw [CLS] state (cls_before_pooler). The head is
  // trained and checkpointed but never exported. Needs a cls / cls_before_pooler student.
  bool mlp_only_train = false;
  // The student's forward pass of a step runs in this many groups of length-sorted sentences,
  // each padded only to its own longest (less padding, same loss up to dropout draws);
  // 1 = one batch padded to its longest sentence, as the authors' collator does.
  std::int64_t length_buckets = 1;

  std::int64_t eval_steps = 25;      // evaluate the dev set every this many steps and at the last step
  bool evaluate = true;              // false: no dev evaluation; best/ is the final model
  std::filesystem::path data_dir;    // holds STS-B dev and SICK-R dev; empty = eval::default_data_dir()
  eval::TextVariant text = eval::TextVariant::SentEval;
  std::int64_t eval_batch = 64;

  std::int64_t checkpoint_steps = 0;  // write checkpoint/ every this many steps (0 = eval_steps) and at the end
  bool resume = false;                // continue from output_dir/checkpoint (error when there is none)
  // Ends this invocation after this global step, leaving a checkpoint, as if the process had been
  // killed right after checkpointing (for tests of --resume). nullopt = run to the end.
  std::optional<std::int64_t> stop_after;
  bool write_curve = true;
  // false: no best/ export and no checkpoint/ (step-time benchmarks of large models); metrics.jsonl
  // is still written.
  bool save_outputs = true;
  // The ranks of a data-parallel job (dist::Group, joined by the caller); nullptr = one process.
  // `batch` is the global batch: chains per step over all ranks, at least one per rank.
  std::shared_ptr<dist::Group> group;
};

// Where a step's seconds went, measured with a clock around each phase (cheap enough to run on
// every step, unlike libtorch's profiler, which more than doubles a step's time). `loss`
// includes the teacher's forward pass on a chain's first visit; `optimizer` includes zeroing
// the gradients.
struct StepPhases {
  double forward = 0, loss = 0, backward = 0, allreduce = 0, clip = 0, optimizer = 0;
  // The phases by name, in step order (metrics.jsonl's keys).
  std::array<std::pair<const char*, double>, 6> named() const {
    return {{{"forward", forward}, {"loss", loss}, {"backward", backward}, {"allreduce", allreduce}, {"clip", clip},
             {"optimizer", optimizer}}};
  }
};

// One optimizer step as logged to metrics.jsonl.
struct StepRecord {
  std::int64_t step = 0;  // 1-based global step
  std::int64_t epoch = 0; // 1-based
  double loss = 0, lr = 0, grad_norm = 0, seconds = 0;
  std::uint64_t comm_bytes = 0;  // gradient bytes this rank sent to the all-reduce (0 in one process)
  StepPhases phases;
};

struct EvalRecord {
  std::int64_t step = 0;
  double score = 0;                                   // mean dev Spearman (the selection score)
  std::vector<std::pair<std::string, double>> tasks;  // per dev task: name -> Spearman
  bool best = false;
};

struct TrainResult {
  std::int64_t total_steps = 0;     // steps of the whole run
  std::int64_t steps_done = 0;      // global step reached when this invocation returned
  std::int64_t start_step = 0;      // 0, or the checkpoint's step when resumed
  bool finished = false;            // false when stop_after ended the invocation early
  std::optional<double> best_score; // nullopt when nothing was evaluated
  std::int64_t best_step = 0;
  std::vector<StepRecord> steps;    // the steps run by this invocation
  std::vector<EvalRecord> evals;    // the evaluations run by this invocation
  double seconds = 0;               // wall time of this invocation's loop
};

class Trainer {
 public:
  // Loads student and teacher and checks the options (Error(Usage) for bad values). `chains`
  // must be non-empty; chains shorter than 2 sentences are an Error(Input).
  Trainer(std::vector<chains::Chain> chains, TrainOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs (or, with options.resume, continues) the loop. `progress` sees one unit per step.
  TrainResult run(Progress& progress);

  // The student's vectors as the loss sees them, [texts, dim] float32, differentiable, in the
  // network's current train()/eval() mode: the pooled embedding, or with mlp_only_train the MLP
  // head over the [CLS] state. Call under the autocast the run uses to reproduce a step.
  torch::Tensor training_embeddings(const std::vector<std::string>& texts);
  // The mlp_only_train head (dense hidden -> hidden; tanh applied by training_embeddings), or an
  // empty holder without mlp_only_train.
  torch::nn::Linear mlp_head();

  models::SentenceEncoder& student();
  models::SentenceEncoder& teacher();
  const TrainOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether `output_dir` holds a checkpoint that TrainOptions::resume can continue from.
bool has_checkpoint(const std::filesystem::path& output_dir);

// The learning rate of (0-based) step `step` of `total`: a linear ramp over `warmup`, then a
// linear decay to 0 (transformers' get_linear_schedule_with_warmup).
double linear_schedule_lr(double base_lr, std::int64_t step, std::int64_t total, std::int64_t warmup);

}  // namespace rankemb::train
