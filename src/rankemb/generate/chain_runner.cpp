#include "rankemb/generate/chain_runner.h"

#include <cctype>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "rankemb/chains/chain_file.h"
#include "rankemb/chains/record.h"
#include "rankemb/chains/settings.h"
#include "rankemb/generate/filters.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::generate {

namespace fs = std::filesystem;

void set_seed_file(RunOptions& options, const SeedFile& file) {
  options.seed_file_name = file.name;
  options.seed_file_size = file.size;
  options.seed_file_hash = file.hash;
}

nlohmann::json run_meta(const SentenceGenerator& backend, const RunOptions& options, std::size_t n_seeds) {
  nlohmann::json j;
  j["model"] = backend.model_name();
  j["guidance"] = backend.guidance();
  j["steps"] = options.steps;
  j["seed_file"] = {{"name", options.seed_file_name}, {"size", options.seed_file_size}, {"hash", options.seed_file_hash}};
  j["shard"] = format_shard(options.shard);
  j["seeds"] = n_seeds;
  j["limit"] = options.limit ? nlohmann::json(*options.limit) : nlohmann::json();
  j["settings"] = options.settings;
  if (options.retries > 0) j["retries"] = options.retries;  // absent = 0, as files from before the guard
  if (const auto& g = options.drift_guard) {
    j["drift_guard"] = {{"model", g->model}, {"margin", g->margin}};
    if (g->max_drop < kNoMaxDrop) j["drift_guard"]["max_drop"] = g->max_drop;
  }
  return j;
}

namespace {

// Validates an existing output against the expected seed order and cuts off an unfinished last
// line (chains/chain_file.h). Returns how many seeds are already done.
std::size_t resume_point(const fs::path& output, const std::vector<Seed>& seeds) {
  const chains::ChainLines file = chains::read_chain_lines(output);
  if (file.unfinished()) fs::resize_file(output, file.complete_bytes);  // the line a kill cut short
  if (file.tail_without_newline) io::LineAppender(output).append("");  // a record missing only its '\n'
  std::size_t done = 0;
  for (const auto& line : file.lines) {
    const std::string where = file.where(line);
    if (done >= seeds.size())
      fail(ErrorCode::Input, "{}: more chains than selected seeds ({}); was it written with other seeds?", where,
           seeds.size());
    const chains::ChainRecord r = chains::parse_chain_record(file.view(line), where);
    if (r.id != seeds[done].id || r.seed != seeds[done].text)
      fail(ErrorCode::Input, "{}: chain id {} is not the expected next seed (id {}); the output does not belong to "
           "these seeds", where, r.id, seeds[done].id);
    ++done;
  }
  return done;
}

struct Active {
  std::size_t index = 0;  // into `seeds`
  std::vector<std::string> sentences;
  std::string prev, cur;
  int attempt = 0;  // of the step in flight
  std::vector<chains::StepRetry> retries;
  std::vector<float> seed_vector;  // drift guard: the seed's unit vector
  double current_similarity = 1.0;  // drift guard: cos(cur, seed)
  // Drift guard: of this step's outputs it judged and retried, the one furthest inside the band
  // (least excess), taken when the last attempt is no better.
  struct Candidate {
    int attempt = 0;
    std::string text;
    double similarity = 0, excess = 0;
  };
  std::optional<Candidate> best;
};

// Unit-length copy of `v` (a zero vector stays zero).
std::vector<float> unit(std::vector<float> v) {
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  if (norm > 0)
    for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  RANKEMB_CHECK(a.size() == b.size(), ErrorCode::Other, "drift guard: vectors of {} and {} values", a.size(), b.size());
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d += static_cast<double>(a[i]) * b[i];
  return d;
}

// The guard's vectors of `texts`, one per text, each checked to be non-empty and of one size.
std::vector<std::vector<float>> guard_vectors(const DriftGuard& guard, const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> v = guard.embed(texts);
  RANKEMB_CHECK(v.size() == texts.size(), ErrorCode::Other, "drift guard {}: {} vectors for {} texts", guard.model,
                v.size(), texts.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    RANKEMB_CHECK(!v[i].empty() && v[i].size() == v.front().size(), ErrorCode::Other,
                  "drift guard {}: vectors of unequal size", guard.model);
    RANKEMB_CHECK(std::all_of(v[i].begin(), v[i].end(), [](float x) { return std::isfinite(x); }), ErrorCode::Other,
                  "drift guard {}: a non-finite value in the vector of {:?}", guard.model, texts[i]);
    v[i] = unit(std::move(v[i]));
  }
  return v;
}

// Lowercased letters and digits: "Two women." and "two women" are the same sentence to the guard.
std::string copy_key(std::string_view s) {
  std::string k;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || std::isalnum(u)) k += static_cast<char>(std::tolower(u));
  }
  return k;
}

// Why the copy guard retries `out` as the next sentence of `chain` ("" = it does not).
std::string retry_reason(const Active& chain, const std::string& seed, const StepResult& res, DropReason verdict) {
  if (verdict != DropReason::None) return std::string(drop_reason_name(verdict));
  if (res.hit_token_limit) return "token_limit";  // a run-on, not a sentence
  const std::string& out = res.text;
  const std::string key = copy_key(out);
  if (key == copy_key(seed)) return "copy";
  for (const auto& s : chain.sentences)
    if (key == copy_key(s)) return "copy";
  return "";
}

void check_run_options(const SentenceGenerator& backend, const std::vector<Seed>& seeds, const RunOptions& options) {
  if (options.steps < 1) fail(ErrorCode::Usage, "steps must be at least 1 (got {})", options.steps);
  if (options.retries < 0 || options.retries > kMaxRetries)
    fail(ErrorCode::Usage, "retries must be in [0, {}] (got {})", kMaxRetries, options.retries);
  if (const auto& g = options.drift_guard) {
    if (options.retries == 0) fail(ErrorCode::Usage, "the drift guard retries steps: it needs retries > 0");
    if (!g->embed) fail(ErrorCode::Usage, "the drift guard has no encoder");
    if (!std::isfinite(g->margin) || g->margin < -2 || g->margin > 2)
      fail(ErrorCode::Usage, "drift margin must be a number in [-2, 2] (got {})", g->margin);
    if (!(g->max_drop > 0 && g->max_drop <= kNoMaxDrop))
      fail(ErrorCode::Usage, "drift max drop must be a number in (0, {}] (got {})", kNoMaxDrop, g->max_drop);
    if (g->margin + g->max_drop <= 0)
      fail(ErrorCode::Usage, "the drift guard's band is empty (margin {} + max drop {} <= 0): it would refuse every step",
           g->margin, g->max_drop);
  }
  if (options.resume && options.overwrite) fail(ErrorCode::Usage, "the options resume and overwrite exclude each other");
  if (options.output.empty()) fail(ErrorCode::Usage, "no output path given");
  for (std::size_t i = 1; i < seeds.size(); ++i)
    RANKEMB_CHECK(seeds[i - 1].id < seeds[i].id, ErrorCode::Other, "seed ids must increase (id {} after {})",
                  seeds[i].id, seeds[i - 1].id);
  RANKEMB_CHECK(backend.capacity() > 0, ErrorCode::Other, "backend {} has capacity 0", backend.model_name());
}

// Creates the output and its settings sidecar, or checks them when resuming. Returns how many
// seeds the output already holds.
std::size_t open_output(const SentenceGenerator& backend, const std::vector<Seed>& seeds, const RunOptions& options) {
  const fs::path& out_path = options.output;
  const fs::path meta_file = chains::meta_path(out_path);
  const nlohmann::json meta = run_meta(backend, options, seeds.size());
  const bool exists = fs::exists(out_path);
  if (exists && !options.resume && !options.overwrite)
    fail(ErrorCode::Usage, "{} exists; resume it (option resume) or replace it (option overwrite)", out_path.string());
  if (!options.resume || !exists) {
    if (!out_path.parent_path().empty()) io::create_output_directory(out_path.parent_path());
    io::write_atomic(meta_file, meta.dump(2) + "\n");
    io::write_atomic(out_path, std::string_view());
    return 0;
  }
  if (!fs::exists(meta_file))
    fail(ErrorCode::Usage, "cannot resume {}: {} is missing, so its settings cannot be checked (overwrite it instead)",
         out_path.string(), meta_file.string());
  if (const auto diff = chains::settings_difference(io::read_json(meta_file, ErrorCode::Input), meta))
    fail(ErrorCode::Usage, "cannot resume {}: it was generated with other settings ({}); rerun with the same "
         "options or overwrite it", out_path.string(), *diff);
  return resume_point(out_path, seeds);
}

// Where finished chains go, in seed order: a line of the chain file, or memory.
using RecordSink = std::function<void(const chains::ChainRecord&)>;

// The loop of chain_runner.h: keeps the backend full, turns its answers into chain steps and
// hands finished chains to the sink in seed order.
class ChainLoop {
 public:
  ChainLoop(SentenceGenerator& backend, const std::vector<Seed>& seeds, const RunOptions& options, std::size_t start,
            Progress& progress, RecordSink sink)
      : backend_(backend), seeds_(seeds), options_(options), progress_(progress), sink_(std::move(sink)),
        next_seed_(start), next_write_(start) {
    const std::size_t capacity = backend.capacity();
    max_buffered_ = options.max_buffered ? options.max_buffered : std::max<std::size_t>(64, 4 * capacity);
    summary_.chains_resumed = start;
  }

  RunSummary run() {
    const std::size_t start = next_write_;
    progress_.start(start > 0 ? fmt::format("generating chains (resuming after {})", start) : "generating chains",
                    seeds_.size() - start, "chains");
    while (next_write_ < seeds_.size()) {
      start_new_chains();
      RANKEMB_CHECK(!in_flight_.empty() || !finished_.empty(), ErrorCode::Other, "chain runner stalled (a bug)");
      if (!in_flight_.empty()) poll_backend();
      write_ready_chains();
    }
    progress_.finish();
    summary_.seconds = seconds();
    return summary_;
  }

 private:
  double seconds() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

  void start_new_chains() {
    std::vector<Active> fresh;
    while (in_flight_.size() + fresh.size() < backend_.capacity() && next_seed_ < seeds_.size() &&
           finished_.size() < max_buffered_) {
      Active chain;
      chain.index = next_seed_++;
      chain.prev = chain.cur = seeds_[chain.index].text;
      fresh.push_back(std::move(chain));
    }
    if (options_.drift_guard && !fresh.empty()) {
      std::vector<std::string> texts;
      for (const Active& chain : fresh) texts.push_back(chain.cur);
      std::vector<std::vector<float>> vectors = guard_vectors(*options_.drift_guard, texts);
      for (std::size_t i = 0; i < fresh.size(); ++i) fresh[i].seed_vector = std::move(vectors[i]);
    }
    for (Active& chain : fresh) submit(std::move(chain));
  }

  void submit(Active chain) {
    StepRequest req;
    req.ticket = next_ticket_++;
    req.current = chain.cur;
    req.previous = chain.prev;
    req.chain_id = seeds_[chain.index].id;
    req.step = static_cast<int>(chain.sentences.size()) + 1;
    req.attempt = chain.attempt;
    backend_.submit(std::move(req));
    in_flight_.emplace(next_ticket_ - 1, std::move(chain));
  }

  // A step's answer on its way back into its chain.
  struct Returned {
    Active chain;
    StepResult result;
    DropReason verdict = DropReason::None;  // the step filter's
    std::string retry_reason;               // "" = the chain takes the output
    double similarity = std::numeric_limits<double>::quiet_NaN();  // drift guard: cos(output, seed)
  };

  void poll_backend() {
    RANKEMB_CHECK(backend_.pending() > 0, ErrorCode::Other, "backend {} reports no pending requests while {} are unanswered",
                  backend_.model_name(), in_flight_.size());
    std::vector<Returned> returned;
    for (StepResult& res : backend_.poll()) {
      auto node = in_flight_.extract(res.ticket);
      RANKEMB_CHECK(!node.empty(), ErrorCode::Other, "backend {} returned unknown ticket {}", backend_.model_name(),
                    res.ticket);
      summary_.new_tokens += res.new_tokens;
      ++summary_.steps_run;
      Returned r{std::move(node.mapped()), std::move(res)};
      r.verdict = check_step(r.result.text);
      if (options_.retries > 0) r.retry_reason = retry_reason(r.chain, seeds_[r.chain.index].text, r.result, r.verdict);
      returned.push_back(std::move(r));
    }
    judge_drift(returned);
    for (Returned& r : returned) take_step(std::move(r));
    if (returned.empty()) return;
    const double secs = seconds();
    progress_.set_detail(fmt::format("{:.0f} tok/s, {} tokens, kept {}, dropped {}",
                                     secs > 0 ? summary_.new_tokens / secs : 0.0, summary_.new_tokens, summary_.kept,
                                     summary_.dropped));
  }

  // The drift guard, in one encoder call per poll: the similarity to the seed of every output its
  // chain would take, a reason for those outside the band, and the chain's best such output.
  void judge_drift(std::vector<Returned>& returned) {
    if (!options_.drift_guard) return;
    const DriftGuard& guard = *options_.drift_guard;
    std::vector<Returned*> judged;
    std::vector<std::string> texts;
    // Outputs the copy guard let through, and on the last attempt those it objects to but the
    // filters pass (the chain may take them: their similarity becomes the current one).
    const auto may_take = [&](const Returned& r) {
      return r.verdict == DropReason::None && (r.retry_reason.empty() || r.chain.attempt >= options_.retries);
    };
    for (Returned& r : returned)
      if (may_take(r)) {
        judged.push_back(&r);
        texts.push_back(r.result.text);
      }
    if (texts.empty()) return;
    const std::vector<std::vector<float>> vectors = guard_vectors(guard, texts);
    for (std::size_t i = 0; i < judged.size(); ++i) {
      Returned& r = *judged[i];
      Active& chain = r.chain;
      r.similarity = dot(vectors[i], chain.seed_vector);
      if (!r.retry_reason.empty()) continue;  // the copy guard's objection stands
      const double back = r.similarity - (chain.current_similarity + guard.margin);
      const double jump = (chain.current_similarity - guard.max_drop) - r.similarity;
      if (back <= 0 && jump <= 0) continue;
      r.retry_reason = back > 0 ? "drift_back" : "drift_jump";
      const double excess = std::max(back, 0.0) + std::max(jump, 0.0);
      if (!chain.best || excess < chain.best->excess)
        chain.best = Active::Candidate{chain.attempt, r.result.text, r.similarity, excess};
    }
  }

  // Retries the step (a guard asked for it and attempts are left) or appends an output to its
  // chain, which then goes on or finishes. On the last attempt a guard's objection is overruled:
  // the output is taken as it is, unless the drift guard kept a better one of this step (then the
  // last output joins the thrown-away ones and the kept one leaves them).
  void take_step(Returned r) {
    Active& chain = r.chain;
    const int step = static_cast<int>(chain.sentences.size()) + 1;
    if (!r.retry_reason.empty() && chain.attempt < options_.retries) {
      if (r.retry_reason.starts_with("drift_")) ++summary_.drift_retries;
      chain.retries.push_back({step, chain.attempt, std::move(r.retry_reason), std::move(r.result.text)});
      ++chain.attempt;
      ++summary_.retries;
      submit(std::move(chain));
      return;
    }
    if (!r.retry_reason.empty() && chain.best && chain.best->attempt != chain.attempt) {
      chain.retries.push_back({step, chain.attempt, std::move(r.retry_reason), std::move(r.result.text)});
      std::erase_if(chain.retries, [&](const chains::StepRetry& t) { return t.step == step && t.attempt == chain.best->attempt; });
      r.result.text = std::move(chain.best->text);
      r.similarity = chain.best->similarity;
      r.verdict = DropReason::None;  // it was judged, so it passed the filter
    }
    chain.attempt = 0;
    chain.best.reset();
    if (!std::isnan(r.similarity)) chain.current_similarity = r.similarity;
    chain.prev = std::move(chain.cur);
    chain.cur = r.result.text;
    chain.sentences.push_back(std::move(r.result.text));
    if (r.verdict != DropReason::None || static_cast<int>(chain.sentences.size()) >= options_.steps)
      finish(std::move(chain), r.verdict);
    else
      submit(std::move(chain));
  }

  void finish(Active chain, DropReason reason) {
    const Seed& seed = seeds_[chain.index];
    if (reason == DropReason::None && is_repetitive(seed.text, chain.sentences)) reason = DropReason::Repetition;
    chains::ChainRecord r;
    r.id = seed.id;
    r.seed = seed.text;
    r.sentences = std::move(chain.sentences);
    r.guidance = backend_.guidance();
    r.model = backend_.model_name();
    r.steps = options_.steps;
    r.kept = reason == DropReason::None;
    r.drop_reason = std::string(drop_reason_name(reason));
    r.retries = std::move(chain.retries);
    finished_.emplace(chain.index, std::move(r));
    progress_.advance(1);
  }

  void write_ready_chains() {
    for (auto it = finished_.begin(); it != finished_.end() && it->first == next_write_; it = finished_.erase(it)) {
      const chains::ChainRecord& r = it->second;
      sink_(r);
      ++next_write_;
      ++summary_.chains_written;
      if (r.kept) {
        ++summary_.kept;
      } else {
        ++summary_.dropped;
        ++summary_.dropped_by_reason[r.drop_reason];
      }
    }
  }

  using Clock = std::chrono::steady_clock;
  SentenceGenerator& backend_;
  const std::vector<Seed>& seeds_;
  const RunOptions& options_;
  Progress& progress_;
  RecordSink sink_;
  Clock::time_point t0_ = Clock::now();
  std::size_t max_buffered_ = 0;
  std::unordered_map<std::uint64_t, Active> in_flight_;  // ticket -> chain
  std::map<std::size_t, chains::ChainRecord> finished_;  // seed index -> record, waiting for earlier ones
  std::uint64_t next_ticket_ = 1;
  std::size_t next_seed_ = 0, next_write_ = 0;
  RunSummary summary_;
};

}  // namespace

RunSummary run_chains(SentenceGenerator& backend, const std::vector<Seed>& seeds, const RunOptions& options,
                      Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  check_run_options(backend, seeds, options);
  const std::size_t start = open_output(backend, seeds, options);
  io::LineAppender writer(options.output);
  const auto append = [&writer](const chains::ChainRecord& r) { writer.append(chains::format_chain_record(r)); };
  RunSummary summary = ChainLoop(backend, seeds, options, start, progress, append).run();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

std::vector<chains::ChainRecord> chain_records(SentenceGenerator& backend, const std::vector<Seed>& seeds, int steps,
                                              int retries, const std::optional<DriftGuard>& drift_guard) {
  RunOptions options;
  options.steps = steps;
  options.retries = retries;
  options.drift_guard = drift_guard;
  options.output = "(memory)";  // never opened: the sink below keeps the records
  check_run_options(backend, seeds, options);
  std::vector<chains::ChainRecord> out;
  NullProgress quiet;
  ChainLoop(backend, seeds, options, 0, quiet, [&out](const chains::ChainRecord& r) { out.push_back(r); }).run();
  return out;
}

std::string format_run_summary(const RunSummary& s) {
  std::string reasons;
  for (const auto& [reason, n] : s.dropped_by_reason) reasons += fmt::format("{}{} {}", reasons.empty() ? "" : ", ", reason, n);
  std::string text = fmt::format("{} chains written: kept {}, dropped {}", s.chains_written, s.kept, s.dropped);
  if (!reasons.empty()) text += " (" + reasons + ")";
  if (s.chains_resumed > 0) text += fmt::format("; {} already in the output before this run", s.chains_resumed);
  if (s.retries > 0) text += fmt::format("; {} copy-guard retries", s.retries);
  if (s.drift_retries > 0) text += fmt::format(" ({} of them drift-guard)", s.drift_retries);
  text += fmt::format("; {} steps, {} tokens in {:.1f} s ({:.0f} tok/s)", s.steps_run, s.new_tokens, s.seconds,
                      s.seconds > 0 ? s.new_tokens / s.seconds : 0.0);
  return text;
}

}  // namespace rankemb::generate
