#include "rankemb/generate/chain_runner.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "rankemb/generate/chain_record.h"
#include "rankemb/generate/filters.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::generate {

namespace fs = std::filesystem;

fs::path meta_path(const fs::path& output) { return fs::path(output.string() + ".meta.json"); }

nlohmann::json run_meta(const SentenceGenerator& backend, const RunOptions& options) {
  nlohmann::json j;
  j["model"] = backend.model_name();
  j["guidance"] = backend.guidance();
  j["steps"] = options.steps;
  j["seed_file"] = {{"name", options.seed_file_name}, {"size", options.seed_file_size}, {"hash", options.seed_file_hash}};
  j["shard"] = format_shard(options.shard);
  j["limit"] = options.limit ? nlohmann::json(*options.limit) : nlohmann::json();
  j["settings"] = options.settings;
  return j;
}

namespace {

// Appends whole lines and flushes each, so the file is always complete lines + at most one partial.
class LineAppender {
 public:
  explicit LineAppender(const fs::path& path) : path_(path), f_(std::fopen(path.c_str(), "ab")) {
    if (!f_) fail(ErrorCode::Input, "{}: cannot open for appending: {}", path.string(), std::strerror(errno));
  }
  ~LineAppender() {
    if (f_) std::fclose(f_);
  }
  LineAppender(const LineAppender&) = delete;
  LineAppender& operator=(const LineAppender&) = delete;
  void append(std::string line) {
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
      fail(ErrorCode::Other, "{}: write failed: {}", path_.string(), std::strerror(errno));
  }

 private:
  fs::path path_;
  std::FILE* f_;
};

// First top-level key whose value differs, for a readable mismatch message.
std::string describe_mismatch(const nlohmann::json& old_meta, const nlohmann::json& new_meta) {
  if (!old_meta.is_object()) return "the existing meta is not a JSON object";
  for (const auto& [key, value] : new_meta.items()) {
    const auto it = old_meta.find(key);
    if (it == old_meta.end()) return fmt::format("\"{}\" is missing from the existing meta", key);
    if (*it != value) return fmt::format("\"{}\" was {}, this run has {}", key, it->dump(), value.dump());
  }
  for (const auto& [key, value] : old_meta.items())
    if (!new_meta.contains(key)) return fmt::format("the existing meta has an unknown key \"{}\"", key);
  return "unknown difference";
}

// Validates an existing output against the expected seed order; drops a partial last line.
// Returns how many seeds are already done.
std::size_t resume_point(const fs::path& output, const std::vector<Seed>& seeds) {
  const std::string text = io::read_file(output);
  const std::size_t last_nl = text.rfind('\n');
  const std::size_t complete = last_nl == std::string::npos ? 0 : last_nl + 1;
  if (complete < text.size()) fs::resize_file(output, complete);  // the line a kill cut short
  std::size_t done = 0, pos = 0, line_no = 0;
  while (pos < complete) {
    const std::size_t end = text.find('\n', pos);
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    const std::string where = fmt::format("{}:{}", output.string(), line_no);
    if (done >= seeds.size())
      fail(ErrorCode::Input, "{}: more chains than selected seeds ({}); was it written with other seeds?", where,
           seeds.size());
    const ChainRecord r = parse_chain_record(line, where);
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
};

}  // namespace

RunSummary run_chains(SentenceGenerator& backend, const std::vector<Seed>& seeds, const RunOptions& options,
                      Progress& progress) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (options.steps < 1) fail(ErrorCode::Usage, "--steps must be at least 1 (got {})", options.steps);
  if (options.resume && options.overwrite) fail(ErrorCode::Usage, "--resume and --overwrite exclude each other");
  if (options.output.empty()) fail(ErrorCode::Usage, "no output path given");
  for (std::size_t i = 1; i < seeds.size(); ++i)
    RANKEMB_CHECK(seeds[i - 1].id < seeds[i].id, ErrorCode::Other, "seed ids must increase (id {} after {})",
                  seeds[i].id, seeds[i - 1].id);
  const std::size_t capacity = backend.capacity();
  RANKEMB_CHECK(capacity > 0, ErrorCode::Other, "backend {} has capacity 0", backend.model_name());

  const fs::path& out_path = options.output;
  const fs::path meta_file = meta_path(out_path);
  const nlohmann::json meta = run_meta(backend, options);
  const bool exists = fs::exists(out_path);
  std::size_t start = 0;
  if (exists && !options.resume && !options.overwrite)
    fail(ErrorCode::Usage, "{} exists; pass --resume to continue it or --overwrite to replace it", out_path.string());
  if (options.resume && exists) {
    if (!fs::exists(meta_file))
      fail(ErrorCode::Usage, "cannot resume {}: {} is missing, so its settings cannot be checked (use --overwrite)",
           out_path.string(), meta_file.string());
    const nlohmann::json old_meta = io::read_json(meta_file, ErrorCode::Input);
    if (old_meta != meta)
      fail(ErrorCode::Usage, "cannot resume {}: it was generated with other settings ({}); rerun with the same "
           "options or use --overwrite", out_path.string(), describe_mismatch(old_meta, meta));
    start = resume_point(out_path, seeds);
  } else {
    if (!out_path.parent_path().empty()) fs::create_directories(out_path.parent_path());
    io::write_atomic(meta_file, meta.dump(2) + "\n");
    io::write_atomic(out_path, std::string_view());
  }

  RunSummary summary;
  summary.chains_resumed = start;
  LineAppender writer(out_path);
  const std::size_t max_buffered = options.max_buffered ? options.max_buffered : std::max<std::size_t>(64, 4 * capacity);

  std::unordered_map<std::uint64_t, Active> in_flight;  // ticket -> chain
  std::map<std::size_t, ChainRecord> finished;          // seed index -> record, waiting for earlier ones
  std::uint64_t next_ticket = 1;
  std::size_t next_seed = start, next_write = start;

  const auto submit = [&](Active chain) {
    StepRequest req;
    req.ticket = next_ticket++;
    req.current = chain.cur;
    req.previous = chain.prev;
    req.chain_id = seeds[chain.index].id;
    req.step = static_cast<int>(chain.sentences.size()) + 1;
    backend.submit(std::move(req));
    in_flight.emplace(next_ticket - 1, std::move(chain));
  };
  const auto finish = [&](Active chain, DropReason reason) {
    if (reason == DropReason::None && is_repetitive(seeds[chain.index].text, chain.sentences))
      reason = DropReason::Repetition;
    ChainRecord r;
    r.id = seeds[chain.index].id;
    r.seed = seeds[chain.index].text;
    r.sentences = std::move(chain.sentences);
    r.guidance = backend.guidance();
    r.model = backend.model_name();
    r.steps = options.steps;
    r.kept = reason == DropReason::None;
    r.drop_reason = std::string(drop_reason_name(reason));
    finished.emplace(chain.index, std::move(r));
    progress.advance(1);
  };

  progress.start(start > 0 ? fmt::format("generating chains (resuming after {})", start) : "generating chains",
                 seeds.size() - start, "chains");
  while (next_write < seeds.size()) {
    while (in_flight.size() < capacity && next_seed < seeds.size() && finished.size() < max_buffered) {
      Active chain;
      chain.index = next_seed++;
      chain.prev = chain.cur = seeds[chain.index].text;
      submit(std::move(chain));
    }
    RANKEMB_CHECK(!in_flight.empty() || !finished.empty(), ErrorCode::Other, "chain runner stalled (a bug)");
    if (!in_flight.empty()) {
      RANKEMB_CHECK(backend.pending() > 0, ErrorCode::Other,
                    "backend {} reports no pending requests while {} are unanswered", backend.model_name(),
                    in_flight.size());
      std::vector<StepResult> results = backend.poll();
      for (StepResult& res : results) {
        auto node = in_flight.extract(res.ticket);
        RANKEMB_CHECK(!node.empty(), ErrorCode::Other, "backend {} returned unknown ticket {}", backend.model_name(),
                      res.ticket);
        Active chain = std::move(node.mapped());
        summary.new_tokens += res.new_tokens;
        ++summary.steps_run;
        const DropReason verdict = check_step(res.text);
        chain.prev = std::move(chain.cur);
        chain.cur = res.text;
        chain.sentences.push_back(std::move(res.text));
        if (verdict != DropReason::None || static_cast<int>(chain.sentences.size()) >= options.steps)
          finish(std::move(chain), verdict);
        else
          submit(std::move(chain));
      }
      if (!results.empty()) {
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        progress.set_detail(fmt::format("{:.0f} tok/s, {} tokens, kept {}, dropped {}",
                                        secs > 0 ? summary.new_tokens / secs : 0.0, summary.new_tokens, summary.kept,
                                        summary.dropped));
      }
    }
    for (auto it = finished.begin(); it != finished.end() && it->first == next_write; it = finished.erase(it)) {
      const ChainRecord& r = it->second;
      writer.append(format_chain_record(r));
      ++next_write;
      ++summary.chains_written;
      if (r.kept) {
        ++summary.kept;
      } else {
        ++summary.dropped;
        ++summary.dropped_by_reason[r.drop_reason];
      }
    }
  }
  progress.finish();
  summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary;
}

std::string format_run_summary(const RunSummary& s) {
  std::string reasons;
  for (const auto& [reason, n] : s.dropped_by_reason) reasons += fmt::format("{}{} {}", reasons.empty() ? "" : ", ", reason, n);
  std::string text = fmt::format("{} chains written: kept {}, dropped {}", s.chains_written, s.kept, s.dropped);
  if (!reasons.empty()) text += " (" + reasons + ")";
  if (s.chains_resumed > 0) text += fmt::format("; {} already in the output before this run", s.chains_resumed);
  text += fmt::format("; {} steps, {} tokens in {:.1f} s ({:.0f} tok/s)", s.steps_run, s.new_tokens, s.seconds,
                      s.seconds > 0 ? s.new_tokens / s.seconds : 0.0);
  return text;
}

}  // namespace rankemb::generate
