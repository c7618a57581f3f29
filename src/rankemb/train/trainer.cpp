#include "rankemb/train/trainer.h"

#include "rankemb/train/fused_adamw.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rankemb/chains/settings.h"
#include "rankemb/dist/group.h"
#include "rankemb/eval/sts.h"
#include "rankemb/io/file.h"
#include "rankemb/models/config.h"
#include "rankemb/models/device.h"
#include "rankemb/models/embed.h"
#include "rankemb/models/safetensors_torch.h"
#include "rankemb/plot/svg.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::train {

namespace fs = std::filesystem;
using torch::Tensor;
using Json = nlohmann::json;

double linear_schedule_lr(double base_lr, std::int64_t step, std::int64_t total, std::int64_t warmup) {
  if (step < warmup) return base_lr * static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup));
  double remaining = static_cast<double>(total - step) / static_cast<double>(std::max<std::int64_t>(1, total - warmup));
  return base_lr * std::max(0.0, remaining);
}

namespace {

constexpr int kCheckpointVersion = 1;

// One phase of a training step: its time is added to `seconds` (StepPhases) and, while
// libtorch's profiler runs (bench_train_step --profile), it is a named scope in the trace.
class Phase {
 public:
  Phase(const char* name, double& seconds) : seconds_(seconds), scope_(at::RecordScope::USER_SCOPE) {
    if (scope_.isActive()) scope_.before(name);
  }
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;
  ~Phase() { seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  double& seconds_;
  at::RecordFunction scope_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Autocast to bfloat16 on `device` for the scope of the guard (the student's forward pass). The
// API moved to device-type arguments in libtorch 2.4; older ones have per-device spellings (the
// *_cpu_* functions, and the unqualified ones for CUDA).
class Autocast {
 public:
  Autocast(torch::Device device, bool on) : on_(on), cuda_(device.is_cuda()) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
    prev_enabled_ = at::autocast::is_autocast_enabled(type);
    prev_dtype_ = at::autocast::get_autocast_dtype(type);
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
#else
    prev_enabled_ = cuda_ ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
    prev_dtype_ = cuda_ ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
    set(true, at::kBFloat16);
#endif
    at::autocast::increment_nesting();
  }
  ~Autocast() {
    if (!on_) return;
    // The cast-weight cache lives for the outermost autocast region, as in Python.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, prev_enabled_);
    at::autocast::set_autocast_dtype(type, prev_dtype_);
#else
    set(prev_enabled_, prev_dtype_);
#endif
  }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
#if !(TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
  void set(bool enabled, at::ScalarType dtype) {
    if (cuda_) {
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
  }
#endif
  bool on_, cuda_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

// The chain order of one epoch: a Fisher-Yates shuffle driven by mt19937_64 seeded from (seed,
// epoch). Written out (not std::shuffle / uniform_int_distribution, whose algorithms the standard
// leaves to the library) so the order is the same with every compiler.
std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(epoch), 0x72616e6bu};
  std::mt19937_64 rng(seq);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  for (std::size_t i = n; i > 1; --i) {
    std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::string shape_string(const Tensor& t) {
  std::string s = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void append_jsonl(const fs::path& path, const Json& record) { io::LineAppender(path).append(record.dump()); }

// metrics.jsonl records, skipping lines that do not parse (a kill mid-line).
std::vector<Json> read_jsonl(const fs::path& path) {
  std::vector<Json> records;
  if (!fs::exists(path)) return records;
  std::istringstream in(io::read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) records.push_back(std::move(j));
  }
  return records;
}

}  // namespace

struct Trainer::Impl {
  std::vector<chains::Chain> chains;
  TrainOptions opt;
  std::unique_ptr<models::SentenceEncoder> student, teacher;
  torch::nn::Linear mlp{nullptr};  // the mlp_only_train head
  torch::Device device = torch::kCPU;  // of student, teacher, head and targets (TrainOptions::device)
  std::vector<Tensor> targets;  // teacher target Y per chain, computed on first use
  std::vector<eval::StsDataset> dev;
  std::int64_t steps_per_epoch = 0, total_steps = 0;

  // Run state (what the checkpoint holds besides weights and optimizer).
  std::int64_t step = 0;  // steps done
  std::optional<double> best_score;
  std::int64_t best_step = 0;

  fs::path out(const char* name) const { return opt.output_dir / name; }

  // Data parallelism (trainer.h): this process's rank, the number of ranks, and whether this
  // rank is the one that evaluates and writes.
  int rank() const { return opt.group ? opt.group->rank() : 0; }
  int world() const { return opt.group ? opt.group->size() : 1; }
  bool leader() const { return rank() == 0; }
  // The checkpoint key of this rank's default (dropout) generator; rank 0 keeps the name a
  // single process uses.
  static std::string dropout_rng_key(int r) { return r == 0 ? "default_cpu" : fmt::format("default_cpu.rank{}", r); }

  Json fingerprint() const {
    return Json{{"seed", opt.seed},
                {"lr", opt.lr},
                {"weight_decay", opt.weight_decay},
                {"warmup_steps", opt.warmup_steps},
                {"clip", opt.clip},
                {"batch", opt.batch},
                {"total_steps", total_steps},
                {"max_length", opt.max_length},
                {"dtype", std::string(dtype_name(opt.dtype))},
                {"temp", opt.loss.temp},
                {"tau2", opt.loss.tau2},
                {"omega", opt.loss.omega},
                {"refine", std::string(refine_mode_name(opt.loss.mode))},
                {"chains", chains.size()},
                {"chains_hash", chains_hash()}};
  }

  // The chains' sentences, so that a resumed run trains on the very chains it started with.
  std::string chains_hash() const {
    std::string all;
    for (const auto& c : chains) {
      for (const auto& s : c.sentences) all.append(s).push_back('\n');
      all.push_back('\x1e');  // chain boundary
    }
    return fnv1a64_hex(all);
  }

  // Options added after checkpoint version 1 enter the fingerprint only when set, so older
  // checkpoints of runs without them still resume.
  Json full_fingerprint() const {
    Json f = fingerprint();
    if (opt.pooler) f["pooler"] = std::string(models::pooler_name(*opt.pooler));
    if (opt.mlp_only_train) f["mlp_only_train"] = true;
    if (opt.length_buckets != 1) f["length_buckets"] = opt.length_buckets;
    // Each rank's dropout generator is in the checkpoint: it resumes with as many ranks only.
    if (world() != 1) f["world_size"] = world();
    // AdamW's state comes back on the device it was saved from.
    if (opt.device.is_cuda()) f["device"] = "cuda";
    return f;
  }

  Tensor training_embeddings(const std::vector<std::string>& texts) {
    auto n = static_cast<std::int64_t>(texts.size());
    std::int64_t groups = std::min(opt.length_buckets, n);
    if (groups <= 1) return embed_group(texts);
    Tensor lengths = student->tokenize(texts, opt.max_length).attention_mask.sum(1);
    auto len = lengths.accessor<std::int64_t, 1>();
    std::vector<std::int64_t> order(texts.size());
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return len[a] > len[b]; });
    std::vector<Tensor> parts;
    for (std::int64_t g = 0; g < groups; ++g) {
      std::int64_t from = g * n / groups, to = (g + 1) * n / groups;
      std::vector<std::string> sub;
      for (std::int64_t r = from; r < to; ++r) sub.push_back(texts[static_cast<std::size_t>(order[static_cast<std::size_t>(r)])]);
      parts.push_back(embed_group(sub));
    }
    // Rows back into input order: row order[r] of the result is row r of the concatenation.
    std::vector<std::int64_t> inverse(texts.size());
    for (std::int64_t r = 0; r < n; ++r) inverse[static_cast<std::size_t>(order[static_cast<std::size_t>(r)])] = r;
    return torch::cat(parts).index_select(0, torch::tensor(inverse, torch::kLong).to(device));
  }

  Tensor embed_group(const std::vector<std::string>& texts) {
    if (!mlp) return student->embed(texts, opt.max_length).to(torch::kFloat);
    // SimCSE's cl_forward: the [CLS] state of the last layer (no BERT pooler), then the head.
    models::TokenBatch b = student->tokenize(texts, opt.max_length);
    models::EncoderOutput out = student->network().forward(b.input_ids.to(device), b.attention_mask.to(device), false);
    return torch::tanh(mlp->forward(out.last_hidden_state.select(1, 0))).to(torch::kFloat);
  }

  // SimCSE's mlp_only_train head (trainer.h), initialized as transformers would.
  void init_mlp_head() {
    models::Pooler p = student->pooler();
    RANKEMB_CHECK(p == models::Pooler::Cls || p == models::Pooler::ClsBeforePooler, ErrorCode::Usage,
                  "mlp_only_train needs [CLS] pooling (cls or cls_before_pooler); the student pools with {}",
                  models::pooler_name(p));
    // Evaluation and export read the raw [CLS] state, as the authors' sentemb_forward does.
    student->set_pooler(models::Pooler::ClsBeforePooler);
    const double init_range = models::initializer_range(opt.student);
    std::int64_t h = student->network().hidden_size();
    mlp = torch::nn::Linear(torch::nn::LinearOptions(h, h));
    torch::NoGradGuard no_grad;
    // Own generator: the head is the same whatever else drew from the default one before.
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed ^ 0x6d6c70ULL);
    mlp->weight.normal_(0.0, init_range, gen);
    mlp->bias.zero_();
    mlp->to(device);
    mlp->train();
  }

  const Tensor& target(std::size_t i) {
    if (!targets[i].defined()) {
      RECORD_FUNCTION("rankemb::train::teacher_targets", std::vector<c10::IValue>());
      NullProgress quiet;
      models::EncodeOptions eo{.batch = 64, .max_length = opt.max_length};
      Tensor emb = teacher->encode(chains[i].sentences, eo, quiet);
      targets[i] = teacher_target(emb, opt.loss).to(device);
    }
    return targets[i];
  }

  EvalRecord evaluate() {
    NullProgress quiet;
    EmbedFn embed = models::encoder_embed_fn(*student, models::EncodeOptions{.batch = opt.eval_batch}, quiet);
    auto results = eval::evaluate_sts(dev, embed, eval::StsOptions{}, quiet);
    EvalRecord rec;
    rec.step = step;
    rec.score = eval::mean_spearman(results);
    for (const auto& r : results) rec.tasks.emplace_back(r.name + "_" + r.split, r.all.spearman);
    return rec;
  }

  void save_best() {
    if (!opt.save_outputs || !leader()) return;
    // Written aside and swapped in (io::write_directory_atomic): a kill leaves the old or the new best/.
    io::write_directory_atomic(out("best"), [&](const fs::path& tmp) { student->save(tmp); });
  }

  models::NamedTensors student_tensors() {
    models::NamedTensors tensors;
    for (const auto& p : student->network().named_parameters(true)) tensors.emplace(p.key(), p.value().detach());
    for (const auto& b : student->network().named_buffers(true)) tensors.emplace(b.key(), b.value().detach());
    if (mlp) {
      for (const auto& p : mlp->named_parameters(true)) tensors.emplace("mlp.dense." + p.key(), p.value().detach());
    }
    return tensors;
  }

  void save_checkpoint(torch::optim::AdamW& optimizer, torch::Generator& loss_gen) {
    if (!opt.save_outputs) return;
    // Every rank's dropout generator (a collective: all ranks take part, rank 0 writes).
    std::vector<Tensor> dropout_states;
    {
      at::Generator cpu = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(cpu.mutex());
      dropout_states.push_back(cpu.get_state());
    }
    if (opt.group) dropout_states = opt.group->allgather(dropout_states.front());
    if (leader()) {
      io::write_directory_atomic(out("checkpoint"), [&](const fs::path& tmp) {
        write_checkpoint(tmp, optimizer, loss_gen, dropout_states);
      });
    }
    // No rank runs ahead of (or exits before) the checkpoint it would resume from.
    if (opt.group) opt.group->barrier();
  }

  void write_checkpoint(const fs::path& tmp, torch::optim::AdamW& optimizer, torch::Generator& loss_gen,
                        const std::vector<Tensor>& dropout_states) {
    models::save_safetensors(tmp / "model.safetensors", student_tensors(), {{"format", "pt"}});
    torch::save(optimizer, (tmp / "optimizer.pt").string());
    models::NamedTensors rng;
    for (std::size_t r = 0; r < dropout_states.size(); ++r)
      rng.emplace(dropout_rng_key(static_cast<int>(r)), dropout_states[r]);
    {
      std::lock_guard<std::mutex> lock(loss_gen.mutex());
      rng.emplace("list_mle", loss_gen.get_state());
    }
    models::save_safetensors(tmp / "rng.safetensors", rng);
    Json state{{"version", kCheckpointVersion},
               {"step", step},
               {"total_steps", total_steps},
               {"best_score", best_score ? Json(*best_score) : Json(nullptr)},
               {"best_step", best_step},
               {"options", full_fingerprint()}};
    io::write_atomic(tmp / "state.json", state.dump(2));
  }

  void load_checkpoint(torch::optim::AdamW& optimizer, torch::Generator& loss_gen) {
    fs::path dir = out("checkpoint");
    fs::path old = dir;
    old += ".old";
    // A kill between the two renames of io::write_directory_atomic leaves only checkpoint.old.
    if (!fs::exists(dir / "state.json") && fs::exists(old / "state.json")) dir = old;
    RANKEMB_CHECK(fs::exists(dir / "state.json"), ErrorCode::Usage, "resume: no checkpoint in {}",
                  opt.output_dir.string());
    try {
      Json state = io::read_json(dir / "state.json", ErrorCode::Input);
      RANKEMB_CHECK(state.value("version", 0) == kCheckpointVersion, ErrorCode::Input,
                    "checkpoint version {} is not {}", state.value("version", 0), kCheckpointVersion);
      if (const auto diff = chains::settings_difference(state.at("options"), full_fingerprint()))
        fail(ErrorCode::Usage, "the checkpoint was made with other options ({}); resume with the same options", *diff);
      step = state.at("step").get<std::int64_t>();
      best_step = state.value("best_step", std::int64_t{0});
      if (state.contains("best_score") && state.at("best_score").is_number()) best_score = state.at("best_score").get<double>();

      models::NamedTensors weights = models::load_safetensors(dir / "model.safetensors", {.copy = true});
      torch::NoGradGuard no_grad;
      auto restore = [&](const std::string& name, Tensor& t) {
        auto it = weights.find(name);
        RANKEMB_CHECK(it != weights.end(), ErrorCode::Input, "model.safetensors lacks tensor \"{}\"", name);
        RANKEMB_CHECK(it->second.sizes() == t.sizes(), ErrorCode::Input, "tensor \"{}\" has shape {}, expected {}", name,
                      shape_string(it->second), shape_string(t));
        t.copy_(it->second);
      };
      for (auto& p : student->network().named_parameters(true)) restore(p.key(), p.value());
      for (auto& b : student->network().named_buffers(true)) restore(b.key(), b.value());
      if (mlp) {
        for (auto& p : mlp->named_parameters(true)) restore("mlp.dense." + p.key(), p.value());
      }

      torch::load(optimizer, (dir / "optimizer.pt").string());

      models::NamedTensors rng = models::load_safetensors(dir / "rng.safetensors", {.copy = true});
      const std::string dropout_key = dropout_rng_key(rank());
      RANKEMB_CHECK(rng.count(dropout_key) && rng.count("list_mle"), ErrorCode::Input,
                    "rng.safetensors needs tensors {} and list_mle", dropout_key);
      at::Generator cpu = at::detail::getDefaultCPUGenerator();
      {
        std::lock_guard<std::mutex> lock(cpu.mutex());
        cpu.set_state(rng.at(dropout_key));
      }
      {
        std::lock_guard<std::mutex> lock(loss_gen.mutex());
        loss_gen.set_state(rng.at("list_mle"));
      }
    } catch (Error& e) {
      throw e.with_context("resuming from " + dir.string());
    }
    if (!leader()) return;
    // Records the killed process wrote after its last checkpoint are redone by this one.
    std::string kept;
    for (const auto& r : read_jsonl(out("metrics.jsonl")))
      if (r.value("step", std::int64_t{0}) <= step) kept += r.dump() + "\n";
    io::write_atomic(out("metrics.jsonl"), kept);
  }

  // ---- one run: set-up, steps, model selection (Trainer::run strings them together) ----

  std::vector<Tensor> params;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  StepPhases phases;  // of the step under way
  std::optional<torch::Generator> loss_gen;  // ListMLE tie-breaking
  std::int64_t cached_epoch = -1;
  std::vector<std::size_t> order;  // chain order of cached_epoch

  // The run directory, by rank 0 alone: created, refused when it holds a run that is not being
  // resumed, its metrics.jsonl started afresh unless resuming.
  void prepare_output_dir(bool resume) {
    io::create_output_directory(opt.output_dir);
    if (opt.resume && !resume) {
      log::warn("resume: {} has no checkpoint yet (killed before the first one); starting from step 0",
                opt.output_dir.string());
      io::write_atomic(out("metrics.jsonl"), "");
    }
    if (!opt.resume) {
      RANKEMB_CHECK(!fs::exists(out("checkpoint")), ErrorCode::Usage,
                    "{} already holds a run; resume it (option resume) or choose another output directory",
                    opt.output_dir.string());
      io::write_atomic(out("metrics.jsonl"), "");
    }
  }

  // Output directory, optimizer and generators; restores the checkpoint when resuming.
  void start_run() {
    // A run killed before its first checkpoint has nothing to continue from: it starts again
    // from step 0, which is what the killed run would have done (the same seed, the same steps).
    const bool resume = opt.resume && has_checkpoint(opt.output_dir);
    if (leader()) prepare_output_dir(resume);
    if (opt.group) opt.group->barrier();  // rank 0's refusal of an occupied directory comes first
    params = student->network().parameters();
    if (mlp) {
      for (const auto& p : mlp->parameters()) params.push_back(p);
    }
    optimizer = std::make_unique<FusedAdamW>(params, torch::optim::AdamWOptions(opt.lr).weight_decay(opt.weight_decay));
    // Seeded after both models are built: building a network draws initial weights from the
    // default generator, and that must not depend on whether this is a resumed run.
    // Each rank its own dropout stream (rank 0's is the single process's); one ListMLE stream,
    // the same on every rank (batch_loss).
    torch::manual_seed(rank() == 0 ? opt.seed : opt.seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(rank())));
    loss_gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed);
    step = 0;
    best_score.reset();
    best_step = 0;
    if (resume) load_checkpoint(*optimizer, *loss_gen);
    if (opt.group) {
      const auto leader_step = static_cast<std::int64_t>(opt.group->broadcast(static_cast<double>(step)));
      RANKEMB_CHECK(leader_step == step, ErrorCode::Usage,
                    "rank {} found a checkpoint at step {} in {}, rank 0 at step {}: every rank must see the same run "
                    "directory (a shared file system)", rank(), step, opt.output_dir.string(), leader_step);
    }
  }

  // The chains of global step `s` (0-based), in the order of its epoch's permutation.
  std::vector<std::size_t> step_chains(std::int64_t s) {
    const std::int64_t epoch = s / steps_per_epoch, pos = s % steps_per_epoch;
    if (epoch != cached_epoch) order = epoch_order(chains.size(), opt.seed, epoch), cached_epoch = epoch;
    const auto first = static_cast<std::size_t>(pos * opt.batch);
    const auto last = std::min(chains.size(), first + static_cast<std::size_t>(opt.batch));
    return std::vector<std::size_t>(order.begin() + static_cast<std::ptrdiff_t>(first),
                                    order.begin() + static_cast<std::ptrdiff_t>(last));
  }

  // This rank's share of the batch-mean loss over the chains `ids`: one forward pass for the
  // rank's chains (positions rank, rank + world, ...), then each chain is its own k x k block. The
  // ListMLE permutations are drawn in chain order for the whole batch, as
  // ranking_distillation_loss_batched does, so each chain gets its single-process draw. Undefined
  // when this rank has no chain in the batch (a short last batch).
  Tensor batch_loss(const std::vector<std::size_t>& ids) {
    std::vector<std::string> texts;
    std::vector<bool> mine(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      mine[i] = static_cast<int>(i % static_cast<std::size_t>(world())) == rank();
      const auto& s = chains[ids[i]].sentences;
      if (mine[i]) texts.insert(texts.end(), s.begin(), s.end());
    }
    if (texts.empty()) {
      for (std::size_t id : ids) random_permutation(static_cast<std::int64_t>(chains[id].sentences.size()), *loss_gen);
      return Tensor();
    }
    student->network().train();
    Tensor emb;
    {
      Phase phase("rankemb::train::forward", phases.forward);
      Autocast autocast(device, opt.dtype == Dtype::BFloat16);
      emb = training_embeddings(texts);
    }
    Phase phase("rankemb::train::loss", phases.loss);
    Tensor loss;
    std::int64_t offset = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::size_t id = ids[i];
      auto k = static_cast<std::int64_t>(chains[id].sentences.size());
      if (!mine[i]) {
        random_permutation(k, *loss_gen);  // another rank's chain: its draw, discarded here
        continue;
      }
      Tensor l = ranking_distillation_loss_from_target(emb.narrow(0, offset, k), target(id), opt.loss, *loss_gen);
      loss = loss.defined() ? loss + l : l;
      offset += k;
    }
    return loss / static_cast<double>(ids.size());
  }

  // One optimizer step, logged to metrics.jsonl.
  StepRecord train_step() {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t s = step;
    const std::vector<std::size_t> ids = step_chains(s);
    const double lr = linear_schedule_lr(opt.lr, s, total_steps, opt.warmup_steps);
    for (auto& group : optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    phases = StepPhases{};
    {
      Phase phase("rankemb::train::zero_grad", phases.optimizer);
      optimizer->zero_grad();
    }
    Tensor loss = batch_loss(ids);
    double loss_value = loss.defined() ? loss.item<double>() : 0.0;
    if (opt.group) loss_value = opt.group->sum(loss_value);  // the batch mean, as one process has it
    if (!std::isfinite(loss_value)) {
      fail(ErrorCode::Other, "loss is {} at step {} ({}, chain {})", loss_value, s + 1, chains[ids.front()].where,
           chains[ids.front()].id);
    }
    if (loss.defined()) {
      Phase phase("rankemb::train::backward", phases.backward);
      loss.backward();
    }
    std::uint64_t comm_bytes = 0;
    if (opt.group) {
      Phase phase("rankemb::train::allreduce", phases.allreduce);
      comm_bytes = opt.group->allreduce_gradients(params);
    }
    const double max_norm = opt.clip > 0 ? opt.clip : std::numeric_limits<double>::infinity();
    double grad_norm = 0;
    {
      Phase phase("rankemb::train::clip", phases.clip);
      grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
    }
    {
      Phase phase("rankemb::train::optimizer", phases.optimizer);
      optimizer->step();
    }
    step = s + 1;
    StepRecord rec{step, s / steps_per_epoch + 1, loss_value, lr, grad_norm,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), comm_bytes, phases};
    if (!leader()) return rec;
    Json line{{"type", "step"}, {"step", rec.step}, {"epoch", rec.epoch}, {"loss", rec.loss},
              {"lr", rec.lr}, {"grad_norm", rec.grad_norm}, {"seconds", rec.seconds}};
    if (opt.group) line["comm_bytes"] = rec.comm_bytes;
    for (const auto& [name, seconds] : rec.phases.named()) line["phases"][name] = seconds;
    append_jsonl(out("metrics.jsonl"), line);
    return rec;
  }

  // After a step: evaluates dev when due, keeps best/ up to date and logs the evaluation.
  std::optional<EvalRecord> select_model(const StepRecord& rec, bool last_step) {
    if (!opt.evaluate) {
      if (last_step) {
        best_step = step;
        save_best();
      }
      return std::nullopt;
    }
    if (step % opt.eval_steps != 0 && !last_step) return std::nullopt;
    const auto t_eval = std::chrono::steady_clock::now();
    EvalRecord ev;
    if (leader()) ev = evaluate();
    // Rank 0's score on every rank: they all keep the same best_score and best_step.
    if (opt.group) {
      ev.score = opt.group->broadcast(ev.score);
      ev.step = step;
    }
    ev.best = !best_score || ev.score > *best_score;
    if (ev.best) {
      best_score = ev.score;
      best_step = step;
      save_best();
    }
    if (!leader()) return ev;
    Json tasks = Json::object();
    for (const auto& [name, v] : ev.tasks) tasks[name] = v;
    append_jsonl(out("metrics.jsonl"),
                 Json{{"type", "eval"}, {"step", ev.step}, {"score", ev.score}, {"tasks", tasks}, {"best", ev.best},
                      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_eval).count()}});
    log::info("step={} epoch={} loss={:.4f} lr={:.3e} val_spearman={:.4f} best={}", step, rec.epoch, rec.loss, rec.lr,
              ev.score, ev.best ? "yes" : "no");
    return ev;
  }

  void save_checkpoint() { save_checkpoint(*optimizer, *loss_gen); }

  void write_curve() {
    plot::Series loss{"", {}, "#1f77b4"};
    plot::Series score{"", {}, "#d62728", true};
    for (const auto& r : read_jsonl(out("metrics.jsonl"))) {
      std::string type = r.value("type", "");
      auto s = static_cast<double>(r.value("step", std::int64_t{0}));
      if (type == "step" && r.contains("loss") && r.at("loss").is_number()) loss.points.emplace_back(s, r.at("loss").get<double>());
      if (type == "eval" && r.contains("score") && r.at("score").is_number()) score.points.emplace_back(s, r.at("score").get<double>());
    }
    std::vector<plot::Panel> panels{{"training loss", {loss}}};
    if (!score.points.empty()) {
      panels.push_back({"dev mean Spearman (STS-B dev, SICK-R dev)", {score}});
      panels.back().marker_x = static_cast<double>(best_step);
      panels.back().marker_label = fmt::format("best/ = step {}", best_step);
    }
    io::write_atomic(out("curve.svg"), plot::line_panels_svg(panels, "rankemb train: " + opt.output_dir.filename().string()));
  }
};

Trainer::Trainer(std::vector<chains::Chain> chains, TrainOptions options) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.chains = std::move(chains);
  m.opt = std::move(options);
  const auto& o = m.opt;
  RANKEMB_CHECK(!m.chains.empty(), ErrorCode::Input, "no chains to train on");
  for (const auto& c : m.chains)
    RANKEMB_CHECK(c.sentences.size() >= 2, ErrorCode::Input, "{}: chain {} has {} sentence(s); a ranking needs 2", c.where,
                  c.id, c.sentences.size());
  RANKEMB_CHECK(!o.output_dir.empty(), ErrorCode::Usage, "an output directory is required");
  RANKEMB_CHECK(o.lr >= 0 && std::isfinite(o.lr), ErrorCode::Usage, "learning rate must be >= 0, got {}", o.lr);
  RANKEMB_CHECK(o.weight_decay >= 0, ErrorCode::Usage, "weight decay must be >= 0, got {}", o.weight_decay);
  RANKEMB_CHECK(o.warmup_steps >= 0, ErrorCode::Usage, "warm-up steps must be >= 0, got {}", o.warmup_steps);
  RANKEMB_CHECK(o.batch >= 1, ErrorCode::Usage, "batch must be >= 1 chain, got {}", o.batch);
  RANKEMB_CHECK(o.epochs >= 1, ErrorCode::Usage, "epochs must be >= 1, got {}", o.epochs);
  RANKEMB_CHECK(o.max_length >= 2, ErrorCode::Usage, "max length must be >= 2 tokens, got {}", o.max_length);
  RANKEMB_CHECK(o.eval_steps >= 1, ErrorCode::Usage, "eval steps must be >= 1, got {}", o.eval_steps);
  RANKEMB_CHECK(o.checkpoint_steps >= 0, ErrorCode::Usage, "checkpoint steps must be >= 0, got {}", o.checkpoint_steps);
  RANKEMB_CHECK(!o.max_steps || *o.max_steps >= 1, ErrorCode::Usage, "max steps must be >= 1, got {}", o.max_steps.value_or(0));
  RANKEMB_CHECK(o.length_buckets >= 1, ErrorCode::Usage, "length buckets must be >= 1, got {}", o.length_buckets);
  RANKEMB_CHECK(o.eval_batch >= 1, ErrorCode::Usage, "eval batch must be >= 1, got {}", o.eval_batch);
  RANKEMB_CHECK(o.batch >= m.world(), ErrorCode::Usage,
                "a batch of {} chain(s) cannot be shared by {} ranks; the batch is global: use at least one chain per rank",
                o.batch, m.world());

  auto n = static_cast<std::int64_t>(m.chains.size());
  m.steps_per_epoch = (n + o.batch - 1) / o.batch;
  m.total_steps = o.max_steps ? *o.max_steps : o.epochs * m.steps_per_epoch;
  m.targets.resize(m.chains.size());

  // Weights stay float32 even for bfloat16 training: autocast computes in bfloat16, AdamW updates
  // float32 masters (what the authors' fp16 mixed precision does).
  m.device = models::torch_device(o.device);
  m.student = models::load_encoder(o.student, {.device = o.device});
  m.teacher = models::load_encoder(o.teacher.empty() ? o.student : o.teacher, {.device = o.device});
  m.teacher->network().eval();
  if (o.pooler) m.student->set_pooler(*o.pooler);
  if (o.mlp_only_train) m.init_mlp_head();
  for (auto& p : m.teacher->network().parameters()) p.requires_grad_(false);
  if (o.evaluate && m.leader()) {
    m.dev = eval::load_dev_tasks(o.data_dir.empty() ? eval::default_data_dir() : o.data_dir, o.text);
  }
}

Trainer::~Trainer() = default;

models::SentenceEncoder& Trainer::student() { return *impl_->student; }
torch::Tensor Trainer::training_embeddings(const std::vector<std::string>& texts) {
  return impl_->training_embeddings(texts);
}
torch::nn::Linear Trainer::mlp_head() { return impl_->mlp; }
models::SentenceEncoder& Trainer::teacher() { return *impl_->teacher; }
const TrainOptions& Trainer::options() const { return impl_->opt; }

bool has_checkpoint(const fs::path& output_dir) {
  // A kill between the two renames of io::write_directory_atomic leaves only checkpoint.old.
  return fs::exists(output_dir / "checkpoint" / "state.json") || fs::exists(output_dir / "checkpoint.old" / "state.json");
}

TrainResult Trainer::run(Progress& progress) {
  auto& m = *impl_;
  const auto t_start = std::chrono::steady_clock::now();
  m.start_run();
  TrainResult result;
  result.total_steps = m.total_steps;
  result.start_step = m.step;
  if (m.step > 0) log::info("resuming at step {} of {}", m.step, m.total_steps);

  const auto& o = m.opt;
  const std::int64_t ckpt_every = o.checkpoint_steps > 0 ? o.checkpoint_steps : o.eval_steps;
  progress.start("training", static_cast<std::uint64_t>(m.total_steps - m.step), "steps");
  while (m.step < m.total_steps) {
    const StepRecord rec = m.train_step();
    result.steps.push_back(rec);
    progress.set_detail(fmt::format("loss {:.4f} lr {:.2e}{}", rec.loss, rec.lr,
                                    m.best_score ? fmt::format(" best {:.4f}", *m.best_score) : std::string()));
    progress.advance(1);
    const bool last_step = m.step == m.total_steps;
    if (auto ev = m.select_model(rec, last_step)) {
      progress.set_detail(fmt::format("loss {:.4f} lr {:.2e} best {:.4f}", rec.loss, rec.lr, *m.best_score));
      result.evals.push_back(std::move(*ev));
    }
    const bool stop = o.stop_after && m.step >= *o.stop_after && !last_step;
    if (m.step % ckpt_every == 0 || last_step || stop) m.save_checkpoint();
    if (stop) break;
  }
  progress.finish();

  result.steps_done = m.step;
  result.finished = m.step == m.total_steps;
  result.best_score = m.best_score;
  result.best_step = m.best_step;
  if (result.finished && o.write_curve && m.leader()) m.write_curve();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace rankemb::train
