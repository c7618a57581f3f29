// The chain loop, filters in the loop, ordered output, kill-and-resume, meta checks, and the
// round trip through chains::read_chains, all with the scrambling fake backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "common/fake_generator.h"
#include "rankemb/chains/record.h"
#include "rankemb/chains/settings.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/chains/training.h"
#include "rankemb/util/progress.h"

namespace rankemb::generate::test {
namespace {

using chains::ChainRecord;
using chains::format_chain_record;
using chains::meta_path;
using chains::parse_chain_record;

// 12 seeds on 15 lines (lines 3, 7 and 12 blank), so ids are not 0..11.
const char* kSeedText =
    "A man is playing a guitar.\n"
    "Two dogs run through a field.\n"
    "\n"
    "A woman slices an onion.\n"
    "Children are playing outside.\n"
    "  The sun sets over the sea.  \n"
    "\n"
    "A cat sleeps on the sofa.\n"
    "The train arrives at noon.\n"
    "Someone is cooking pasta.\n"
    "A boy kicks a ball.\n"
    "   \n"
    "The old bridge was closed.\n"
    "Birds sing in the morning.\n"
    "A chef tastes the soup.\n";

std::vector<Seed> all_seeds() { return parse_seeds(kSeedText, "seeds.txt"); }

RunOptions options_for(const std::filesystem::path& out, int steps = 5) {
  RunOptions o;
  o.steps = steps;
  o.output = out;
  o.seed_file_name = "seeds.txt";
  o.seed_file_size = std::string(kSeedText).size();
  o.seed_file_hash = fnv1a64_hex(kSeedText);
  o.settings = {{"max_new_tokens", 100}};
  return o;
}

// Chain 1 breaks with a newline at step 3, chain 4 gives an empty sentence at step 2, chain 8
// repeats itself (kept only if the repetition rule misses it); everyone else drifts normally.
std::string scripted_answer(const StepRequest& r) {
  if (r.chain_id == 1 && r.step == 3) return "line one\nline two";
  if (r.chain_id == 4 && r.step == 2) return "";
  if (r.chain_id == 8) return "same again";
  return default_answer(r);
}

FakeGenerator::Options fake(unsigned scramble = 1, std::size_t capacity = 3) {
  FakeGenerator::Options o;
  o.capacity = capacity;
  o.scramble = scramble;
  o.answer = scripted_answer;
  return o;
}

std::string reference_run(const TempDir& dir, int steps = 5) {
  FakeGenerator gen(fake(7, 4));
  NullProgress p;
  const auto path = dir / "reference.jsonl";
  run_chains(gen, all_seeds(), options_for(path, steps), p);
  return slurp(path);
}

TEST(ChainRunner, FeedsCurrentAndPreviousAndKeepsBackendFull) {
  TempDir dir;
  FakeGenerator gen(fake(3, 3));
  NullProgress p;
  const auto seeds = all_seeds();
  const RunSummary s = run_chains(gen, seeds, options_for(dir / "out.jsonl"), p);
  EXPECT_EQ(gen.max_pending(), 3u);
  // Rebuild each chain from the request log and check the (current, previous) pairs.
  std::map<std::uint64_t, std::vector<StepRequest>> by_chain;
  for (const auto& r : gen.log()) by_chain[r.chain_id].push_back(r);
  ASSERT_EQ(by_chain.size(), seeds.size());
  std::size_t mismatches = 0;
  for (const auto& seed : seeds) {
    auto& reqs = by_chain[seed.id];
    std::sort(reqs.begin(), reqs.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
    std::string prev = seed.text, cur = seed.text;
    for (std::size_t k = 0; k < reqs.size(); ++k) {
      const auto& r = reqs[k];
      if (r.step != static_cast<int>(k) + 1 || r.current != cur || r.previous != prev) {
        if (++mismatches <= 3)
          ADD_FAILURE() << "chain " << seed.id << " step " << r.step << ": current '" << r.current << "' (want '"
                        << cur << "'), previous '" << r.previous << "' (want '" << prev << "')";
      }
      const std::string out = scripted_answer(r);
      prev = cur;
      cur = out;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  // Early stop: chain 1 asked for 3 steps only, chain 4 for 2; the others for all 5.
  EXPECT_EQ(by_chain[1].size(), 3u);
  EXPECT_EQ(by_chain[4].size(), 2u);
  EXPECT_EQ(by_chain[0].size(), 5u);
  EXPECT_EQ(s.chains_written, seeds.size());
  EXPECT_EQ(s.kept, seeds.size() - 3);
  EXPECT_EQ(s.dropped, 3u);
  EXPECT_EQ(s.dropped_by_reason.at("newline"), 1u);
  EXPECT_EQ(s.dropped_by_reason.at("empty"), 1u);
  EXPECT_EQ(s.dropped_by_reason.at("repetition"), 1u);
  EXPECT_EQ(s.steps_run, gen.log().size());
  EXPECT_GT(s.new_tokens, 0u);
}

TEST(ChainRunner, RecordsInIdOrderWithReasonsAndPartialChains) {
  TempDir dir;
  FakeGenerator gen(fake(11, 5));
  NullProgress p;
  const auto seeds = all_seeds();
  run_chains(gen, seeds, options_for(dir / "out.jsonl"), p);
  const std::string text = slurp(dir / "out.jsonl");
  std::vector<ChainRecord> recs;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto end = text.find('\n', pos);
    ASSERT_NE(end, std::string::npos) << "unterminated line";
    recs.push_back(parse_chain_record(std::string_view(text).substr(pos, end - pos), "out"));
    pos = end + 1;
  }
  ASSERT_EQ(recs.size(), seeds.size());
  for (std::size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].id, seeds[i].id);
    EXPECT_EQ(recs[i].seed, seeds[i].text);
    EXPECT_EQ(recs[i].model, "fake");
    EXPECT_EQ(recs[i].guidance, 1.5);
    EXPECT_EQ(recs[i].steps, 5);
  }
  EXPECT_EQ(recs[4].seed, "The sun sets over the sea.");  // stripped, id = line index 5
  EXPECT_EQ(recs[4].id, 5u);
  const auto& nl = recs[1];
  EXPECT_FALSE(nl.kept);
  EXPECT_EQ(nl.drop_reason, "newline");
  ASSERT_EQ(nl.sentences.size(), 3u);
  EXPECT_EQ(nl.sentences[2], "line one\nline two");
  const auto& empty = recs[3];  // id 4
  EXPECT_EQ(empty.id, 4u);
  EXPECT_FALSE(empty.kept);
  EXPECT_EQ(empty.drop_reason, "empty");
  EXPECT_EQ(empty.sentences.size(), 2u);
  const auto& rep = recs[6];  // id 8
  EXPECT_EQ(rep.id, 8u);
  EXPECT_FALSE(rep.kept);
  EXPECT_EQ(rep.drop_reason, "repetition");
  EXPECT_EQ(rep.sentences.size(), 5u);
  EXPECT_TRUE(recs[0].kept);
  EXPECT_EQ(recs[0].drop_reason, "");
  EXPECT_EQ(recs[0].sentences.size(), 5u);
}

TEST(ChainRunner, OutputDoesNotDependOnBatchingOrCapacity) {
  TempDir dir;
  const std::string ref = reference_run(dir);
  NullProgress p;
  for (std::size_t cap : {1u, 2u, 5u, 40u}) {
    for (unsigned scramble : {2u, 9u}) {
      FakeGenerator gen(fake(scramble, cap));
      const auto path = dir / fmt::format("c{}_{}.jsonl", cap, scramble);
      auto o = options_for(path);
      o.max_buffered = 2;  // also exercise the back-pressure on the reorder buffer
      run_chains(gen, all_seeds(), o, p);
      EXPECT_EQ(slurp(path), ref) << "capacity " << cap << " scramble " << scramble;
    }
  }
}

TEST(ChainRunner, KilledRunsResumeToTheSameBytes) {
  TempDir dir;
  const std::string ref = reference_run(dir);
  NullProgress p;
  std::size_t mismatches = 0;
  for (long kill_at : {0L, 1L, 2L, 5L, 9L, 17L, 30L}) {
    const auto path = dir / fmt::format("kill{}.jsonl", kill_at);
    auto crashing = fake(5, 3);
    crashing.throw_after_polls = kill_at;
    FakeGenerator gen(crashing);
    const Error e = expect_error([&] { run_chains(gen, all_seeds(), options_for(path), p); });
    EXPECT_NE(std::string(e.what()).find("fake: crash"), std::string::npos) << e.what();
    const std::string partial = slurp(path);
    EXPECT_EQ(ref.compare(0, partial.size(), partial), 0) << "killed output is not a prefix of the full run";
    FakeGenerator again(fake(13, 2));  // different batching on resume
    auto o = options_for(path);
    o.resume = true;
    const RunSummary s = run_chains(again, all_seeds(), o, p);
    EXPECT_EQ(s.chains_resumed + s.chains_written, all_seeds().size());
    if (slurp(path) != ref && ++mismatches <= 3) ADD_FAILURE() << "resume after kill at poll " << kill_at << " differs";
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(ChainRunner, ResumeDropsAPartialLineAtAnyOffset) {
  TempDir dir;
  const std::string ref = reference_run(dir);
  const std::string meta = slurp(meta_path(dir / "reference.jsonl"));
  NullProgress p;
  const std::size_t first_nl = ref.find('\n');
  std::vector<std::size_t> offsets = {0, 1, first_nl / 2, first_nl, first_nl + 1, first_nl + 2, ref.size() / 2,
                                      ref.size() - 2, ref.size() - 1, ref.size()};
  std::size_t mismatches = 0;
  for (std::size_t off : offsets) {
    const auto path = dir / fmt::format("cut{}.jsonl", off);
    spit(path, ref.substr(0, off));
    spit(meta_path(path), meta);
    FakeGenerator gen(fake(21, 3));
    auto o = options_for(path);
    o.resume = true;
    run_chains(gen, all_seeds(), o, p);
    if (slurp(path) != ref && ++mismatches <= 3) ADD_FAILURE() << "resume after cut at byte " << off << " differs";
  }
  EXPECT_EQ(mismatches, 0u);
  // A complete file resumes to itself without asking the backend anything.
  FakeGenerator idle(fake());
  auto o = options_for(dir / "reference.jsonl");
  o.resume = true;
  const RunSummary s = run_chains(idle, all_seeds(), o, p);
  EXPECT_EQ(idle.log().size(), 0u);
  EXPECT_EQ(s.chains_written, 0u);
  EXPECT_EQ(slurp(dir / "reference.jsonl"), ref);
}

TEST(ChainRunner, ResumeRejectsOtherSettingsAndForeignFiles) {
  TempDir dir;
  reference_run(dir);
  const auto path = dir / "reference.jsonl";
  NullProgress p;
  const auto resume = [&](RunOptions o, FakeGenerator::Options f = fake()) {
    o.resume = true;
    FakeGenerator gen(f);
    return expect_error([&] { run_chains(gen, all_seeds(), o, p); });
  };
  Error e = resume(options_for(path, 6));
  EXPECT_EQ(e.code(), ErrorCode::Usage);
  EXPECT_NE(std::string(e.what()).find("\"steps\" was 5, this run has 6"), std::string::npos) << e.what();
  auto other_model = fake();
  other_model.model = "other";
  EXPECT_EQ(resume(options_for(path), other_model).code(), ErrorCode::Usage);
  auto other_g = fake();
  other_g.guidance = 1.0;
  EXPECT_EQ(resume(options_for(path), other_g).code(), ErrorCode::Usage);
  auto limited = options_for(path);
  limited.limit = 4;
  EXPECT_EQ(resume(limited).code(), ErrorCode::Usage);
  auto other_hash = options_for(path);
  other_hash.seed_file_hash = "0000000000000000";
  EXPECT_EQ(resume(other_hash).code(), ErrorCode::Usage);
  auto other_settings = options_for(path);
  other_settings.settings = {{"max_new_tokens", 50}};
  EXPECT_EQ(resume(other_settings).code(), ErrorCode::Usage);
  // A matching meta but lines from other seeds: Error(Input) naming file:line.
  const std::string ref = slurp(path);
  std::string swapped = ref;
  const auto a = swapped.find('\n');
  swapped = swapped.substr(a + 1, swapped.find('\n', a + 1) - a) + swapped.substr(0, a + 1);  // lines 2, 1
  spit(path, swapped);
  e = resume(options_for(path));
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("reference.jsonl:1"), std::string::npos) << e.what();
  // No meta at all.
  std::filesystem::remove(meta_path(path));
  EXPECT_EQ(resume(options_for(path)).code(), ErrorCode::Usage);
}

TEST(ChainRunner, ExistingOutputNeedsResumeOrOverwrite) {
  TempDir dir;
  const std::string ref = reference_run(dir);
  const auto path = dir / "reference.jsonl";
  NullProgress p;
  FakeGenerator gen(fake());
  Error e = expect_error([&] { run_chains(gen, all_seeds(), options_for(path), p); });
  EXPECT_EQ(e.code(), ErrorCode::Usage);
  EXPECT_NE(std::string(e.what()).find("resume"), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("overwrite"), std::string::npos);
  auto both = options_for(path);
  both.resume = both.overwrite = true;
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), both, p); }).code(), ErrorCode::Usage);
  auto zero = options_for(dir / "zero.jsonl", 0);
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), zero, p); }).code(), ErrorCode::Usage);
  // --overwrite replaces a file with other content and a stale meta.
  spit(path, "garbage\n");
  auto ow = options_for(path);
  ow.overwrite = true;
  FakeGenerator fresh(fake(7, 4));
  run_chains(fresh, all_seeds(), ow, p);
  EXPECT_EQ(slurp(path), ref);
  // --resume on a missing output starts from scratch.
  auto rs = options_for(dir / "new.jsonl");
  rs.resume = true;
  FakeGenerator fresh2(fake(8, 2));
  run_chains(fresh2, all_seeds(), rs, p);
  EXPECT_EQ(slurp(dir / "new.jsonl"), ref);
}

TEST(ChainRunner, OutputReadsBackWithTrainReadChains) {
  TempDir dir;
  reference_run(dir);
  const auto file = chains::read_chains(dir / "reference.jsonl", {.strict = true});
  const auto seeds = all_seeds();
  ASSERT_EQ(file.chains.size(), seeds.size() - 3);
  EXPECT_EQ(file.n_dropped, 3u);
  EXPECT_TRUE(file.malformed.empty());
  const auto& c = file.chains[0];
  EXPECT_EQ(c.id, "0");
  ASSERT_EQ(c.sentences.size(), 6u);  // seed + 5
  EXPECT_EQ(c.sentences[0], seeds[0].text);
  EXPECT_EQ(c.sentences[1], "c0 s1 <A man is pla>");
}

TEST(ChainRunner, ProgressCountsChainsAndReportsTokens) {
  struct Recorder final : Progress {
    std::uint64_t total = 0, done = 0;
    int starts = 0, finishes = 0;
    std::string detail;
    void start(std::string_view, std::uint64_t t, std::string_view unit) override {
      total = t;
      ++starts;
      EXPECT_EQ(unit, "chains");
    }
    void advance(std::uint64_t n) override { done += n; }
    void set_detail(std::string_view d) override { detail = d; }
    void finish() override { ++finishes; }
  } rec;
  TempDir dir;
  FakeGenerator gen(fake());
  const auto s = run_chains(gen, all_seeds(), options_for(dir / "o.jsonl"), rec);
  EXPECT_EQ(rec.total, all_seeds().size());
  EXPECT_EQ(rec.done, all_seeds().size());
  EXPECT_EQ(rec.starts, 1);
  EXPECT_EQ(rec.finishes, 1);
  EXPECT_NE(rec.detail.find("tok/s"), std::string::npos) << rec.detail;
  const std::string summary = format_run_summary(s);
  EXPECT_NE(summary.find("kept 9, dropped 3 (empty 1, newline 1, repetition 1)"), std::string::npos) << summary;
}

TEST(ChainRunner, MisbehavingBackendsAreReported) {
  // Answers with a ticket it was never given.
  struct WrongTicket final : SentenceGenerator {
    std::vector<StepRequest> q;
    std::size_t capacity() const override { return 2; }
    void submit(StepRequest r) override { q.push_back(std::move(r)); }
    std::vector<StepResult> poll() override {
      std::vector<StepResult> out;
      for (auto& r : q) out.push_back({.ticket = r.ticket + 1000, .text = "x"});
      q.clear();
      return out;
    }
    std::size_t pending() const override { return q.size(); }
    std::string model_name() const override { return "wrong"; }
    double guidance() const override { return 1.0; }
  } wrong;
  TempDir dir;
  NullProgress p;
  Error e = expect_error([&] { run_chains(wrong, all_seeds(), options_for(dir / "w.jsonl"), p); });
  EXPECT_EQ(e.code(), ErrorCode::Other);
  EXPECT_NE(std::string(e.what()).find("unknown ticket"), std::string::npos) << e.what();
  // Forgets its requests (pending() drops to 0 without answering).
  struct Forgetful final : SentenceGenerator {
    std::size_t capacity() const override { return 2; }
    void submit(StepRequest) override {}
    std::vector<StepResult> poll() override { return {}; }
    std::size_t pending() const override { return 0; }
    std::string model_name() const override { return "forgetful"; }
    double guidance() const override { return 1.0; }
  } forgetful;
  e = expect_error([&] { run_chains(forgetful, all_seeds(), options_for(dir / "f.jsonl"), p); });
  EXPECT_NE(std::string(e.what()).find("no pending requests"), std::string::npos) << e.what();
}

// Copies on the first try, something new on a retry: chain 0 copies its input at every step's
// first attempt, chain 1 repeats the seed (in other case and punctuation) at step 2 until the
// third attempt, chain 5 answers with a newline at step 1 on every attempt.
std::string copying_answer(const StepRequest& r) {
  if (r.chain_id == 0 && r.attempt == 0) return r.current;
  if (r.chain_id == 1 && r.step == 2 && r.attempt < 2) return "TWO dogs run through a field";
  if (r.chain_id == 5 && r.step == 1) return "a\nb";
  return default_answer(r) + (r.attempt > 0 ? " #" + std::to_string(r.attempt) : "");
}

TEST(ChainRunner, CopyGuardRetriesCopiesAndRecordsEveryRetry) {
  TempDir dir("copy_guard");
  FakeGenerator::Options o = fake(3, 4);
  std::vector<StepRequest> seen;
  o.answer = [&](const StepRequest& r) {
    seen.push_back(r);
    return copying_answer(r);
  };
  FakeGenerator gen(o);
  NullProgress p;
  RunOptions opts = options_for(dir / "guarded.jsonl", 3);
  opts.retries = 2;
  const RunSummary summary = run_chains(gen, all_seeds(), opts, p);
  const auto records = chains::read_chain_records(dir / "guarded.jsonl");
  ASSERT_EQ(records.size(), 12u);
  // Chain 0: every step retried once for a copy, then kept with the retried outputs.
  ASSERT_EQ(records[0].retries.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(records[0].retries[k].step, k + 1);
    EXPECT_EQ(records[0].retries[k].attempt, 0);
    EXPECT_EQ(records[0].retries[k].reason, "copy");
  }
  EXPECT_EQ(records[0].retries[0].text, "A man is playing a guitar.");
  EXPECT_TRUE(records[0].kept);
  EXPECT_NE(records[0].sentences[0].find(" #1"), std::string::npos);
  // Chain 1 (the seed on line 2): two copies of the seed at step 2, the third attempt taken.
  ASSERT_EQ(records[1].retries.size(), 2u);
  EXPECT_EQ(records[1].retries[1], (chains::StepRetry{2, 1, "copy", "TWO dogs run through a field"}));
  EXPECT_NE(records[1].sentences[1].find(" #2"), std::string::npos);
  // Chain 5: newline on all three attempts; the last one is taken and the filter drops it.
  const auto& broken = records[4];
  ASSERT_EQ(broken.id, 5u);
  EXPECT_EQ(broken.retries.size(), 2u);
  EXPECT_EQ(broken.retries[0].reason, "newline");
  EXPECT_FALSE(broken.kept);
  EXPECT_EQ(broken.drop_reason, "newline");
  EXPECT_EQ(summary.retries, 3u + 2u + 2u);
  EXPECT_EQ(summary.steps_run, 12u * 3u - 2u + summary.retries);  // chain 5 stopped after step 1
  // The retries counter travels with every request.
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](const StepRequest& r) { return r.attempt == 2; }));
  EXPECT_TRUE(std::none_of(seen.begin(), seen.end(), [](const StepRequest& r) { return r.attempt > 2; }));
}

// chain_records (the server's /v1/chains) is the same loop without the file: each record formats
// to the bytes run_chains wrote on that seed's line, copy-guard retries included, whatever the
// backend's capacity.
TEST(ChainRunner, InMemoryRecordsEqualTheFileLines) {
  TempDir dir("in_memory");
  FakeGenerator::Options o = fake(3, 4);
  o.answer = copying_answer;
  FakeGenerator file_gen(o);
  NullProgress p;
  RunOptions opts = options_for(dir / "file.jsonl", 3);
  opts.retries = 2;
  run_chains(file_gen, all_seeds(), opts, p);
  std::vector<std::string> lines;
  const std::string text = slurp(dir / "file.jsonl");
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) lines.push_back(text.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 12u);
  for (std::size_t capacity : {1u, 5u}) {
    o.capacity = capacity;
    FakeGenerator gen(o);
    const auto records = chain_records(gen, all_seeds(), 3, 2);
    ASSERT_EQ(records.size(), lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(format_chain_record(records[i]), lines[i]) << "capacity " << capacity;
    // One seed alone, with the id it has in the file: its line.
    FakeGenerator one(o);
    EXPECT_EQ(format_chain_record(chain_records(one, {all_seeds()[4]}, 3, 2).at(0)), lines[4]);
  }
  EXPECT_FALSE(std::filesystem::exists("(memory)"));
  FakeGenerator gen(o);
  EXPECT_THROW(chain_records(gen, all_seeds(), 0, 0), rankemb::Error);
  EXPECT_THROW(chain_records(gen, all_seeds(), 3, kMaxRetries + 1), rankemb::Error);
}

TEST(ChainRunner, WithoutTheGuardCopiesAreKeptAsThePaperDoes) {
  TempDir dir("no_guard");
  FakeGenerator::Options o = fake(1, 2);
  o.answer = copying_answer;
  FakeGenerator gen(o);
  NullProgress p;
  run_chains(gen, all_seeds(), options_for(dir / "plain.jsonl", 3), p);
  const auto records = chains::read_chain_records(dir / "plain.jsonl");
  EXPECT_TRUE(records[0].retries.empty());
  EXPECT_EQ(records[0].sentences[0], "A man is playing a guitar.");
  EXPECT_FALSE(records[0].kept);  // the seed 4 times: the repetition filter
  EXPECT_EQ(slurp(dir / "plain.jsonl").find("retries"), std::string::npos);
  RunOptions bad = options_for(dir / "bad.jsonl", 3);
  bad.retries = kMaxRetries + 1;
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), bad, p); }).code(), ErrorCode::Usage);
}

// Drift guard fixture: an output "... ~D" sits at angle 0.1 D from the seed (angle 0) on a
// circle, so cos(output, seed) = cos(0.1 D) falls as D grows. Chain 0 moves back at step 3
// (D 1 after 2) on its first attempt only; chain 1 answers D 0 (the seed's own similarity) at
// step 2 on every attempt; chain 5 answers a newline at step 2, then D 0 (the copy guard's reason
// first, the drift guard's next); everyone else steps D = step.
std::string drifting_answer(const StepRequest& r) {
  int d = r.step;
  if (r.chain_id == 0 && r.step == 3 && r.attempt == 0) d = 1;
  if (r.chain_id == 1 && r.step == 2) d = 0;
  if (r.chain_id == 5 && r.step == 2) {
    if (r.attempt == 0) return "a\nb";
    if (r.attempt == 1) d = 0;
  }
  return fmt::format("c{} s{} a{} ~{}", r.chain_id, r.step, r.attempt, d);
}

// The fixture's encoder: the seed (no " ~") at angle 0, "... ~D" at 0.1 D, scaled by 3 so that
// the guard must normalize. Counts the texts it embeds.
EmbedFn circle_encoder(std::size_t* texts_seen) {
  return [texts_seen](const std::vector<std::string>& texts) {
    std::vector<std::vector<float>> out;
    for (const std::string& t : texts) {
      const auto at = t.rfind(" ~");
      const double angle = at == std::string::npos ? 0.0 : 0.1 * std::stoi(t.substr(at + 2));
      out.push_back({static_cast<float>(3 * std::cos(angle)), static_cast<float>(3 * std::sin(angle))});
      ++*texts_seen;
    }
    return out;
  };
}

// run_chains over every seed with the circle encoder as the drift guard and 2 retries; what it
// wrote, read back, and how many texts the guard embedded.
struct GuardedRun {
  RunSummary summary;
  std::vector<ChainRecord> records;
  std::size_t embedded = 0;
};
GuardedRun guarded_run(const std::filesystem::path& out, std::function<std::string(const StepRequest&)> answer,
                       int steps, double margin, double max_drop = kNoMaxDrop, unsigned scramble = 5) {
  FakeGenerator::Options o = fake(scramble, 4);
  o.answer = std::move(answer);
  FakeGenerator gen(o);
  NullProgress p;
  GuardedRun run;
  RunOptions opts = options_for(out, steps);
  opts.retries = 2;
  opts.drift_guard = DriftGuard{.embed = circle_encoder(&run.embedded), .model = "circle", .margin = margin,
                                .max_drop = max_drop};
  run.summary = run_chains(gen, all_seeds(), opts, p);
  run.records = chains::read_chain_records(out);
  return run;
}

TEST(ChainRunner, DriftGuardRetriesStepsThatMoveBackTowardTheSeed) {
  TempDir dir("drift_guard");
  const GuardedRun run = guarded_run(dir / "guarded.jsonl", drifting_answer, 4, 0.0);
  const auto& records = run.records;
  const RunSummary& summary = run.summary;
  ASSERT_EQ(records.size(), 12u);
  // Chain 0: step 3's first answer (D 1 < D 2) is thrown away, the retry (D 3) kept.
  ASSERT_EQ(records[0].retries.size(), 1u);
  EXPECT_EQ(records[0].retries[0], (chains::StepRetry{3, 0, "drift_back", "c0 s3 a0 ~1"}));
  EXPECT_EQ(records[0].sentences[2], "c0 s3 a1 ~3");
  // Chain 1: D 0 is as similar as the seed, more than step 1 (D 1): two retries, then the guard
  // takes the first of the three equally bad outputs (the last one joins the thrown away ones,
  // the taken one leaves them); step 3 is then judged against it (D 3 is further: kept).
  ASSERT_EQ(records[1].retries.size(), 2u);
  EXPECT_EQ(records[1].retries[0], (chains::StepRetry{2, 1, "drift_back", "c1 s2 a1 ~0"}));
  EXPECT_EQ(records[1].retries[1], (chains::StepRetry{2, 2, "drift_back", "c1 s2 a2 ~0"}));
  EXPECT_EQ(records[1].sentences[1], "c1 s2 a0 ~0");
  EXPECT_EQ(records[1].sentences[2], "c1 s3 a0 ~3");
  // Chain 5 (the fifth record; ids skip the blank line 3): newline, drift back, then kept.
  const auto& c5 = records[4];
  ASSERT_EQ(c5.id, 5u);
  ASSERT_EQ(c5.retries.size(), 2u);
  EXPECT_EQ(c5.retries[0].reason, "newline");
  EXPECT_EQ(c5.retries[1].reason, "drift_back");
  EXPECT_EQ(c5.sentences[1], "c5 s2 a2 ~2");
  EXPECT_TRUE(c5.kept);
  for (std::size_t i = 0; i < records.size(); ++i)
    if (records[i].id != 0 && records[i].id != 1 && records[i].id != 5) {
      EXPECT_TRUE(records[i].retries.empty()) << i;
    }
  EXPECT_EQ(summary.retries, 5u);
  EXPECT_EQ(summary.drift_retries, 4u);
  // Embedded: every seed once, and every output a chain could take once (not the newline).
  EXPECT_EQ(run.embedded, 12u + summary.steps_run - 1u);
  // The meta records the guard; a resume with another margin is refused.
  const auto meta = nlohmann::json::parse(slurp(meta_path(dir / "guarded.jsonl")));
  EXPECT_EQ(meta.at("drift_guard").at("model"), "circle");
  EXPECT_FALSE(meta.at("drift_guard").contains("max_drop"));  // none
  std::size_t embedded = 0;
  RunOptions opts = options_for(dir / "guarded.jsonl", 4);
  opts.retries = 2;
  opts.resume = true;
  opts.drift_guard = DriftGuard{.embed = circle_encoder(&embedded), .model = "circle", .margin = 0.05};
  FakeGenerator again(fake());
  NullProgress p;
  EXPECT_EQ(expect_error([&] { run_chains(again, all_seeds(), opts, p); }).code(), ErrorCode::Usage);
}

// Chain 7 at step 2 leaves in one step (D 9 after D 1: cos drops 0.37), then less (D 6: 0.17),
// then answers a newline; its step 3 goes on to D 7.
std::string jumping_answer(const StepRequest& r) {
  if (r.chain_id == 7 && r.step == 3) return fmt::format("c7 s3 a{} ~7", r.attempt);
  if (r.chain_id == 7 && r.step == 2) {
    if (r.attempt == 0) return "c7 s2 a0 ~9";
    if (r.attempt == 1) return "c7 s2 a1 ~6";
    return "x\ny";
  }
  return fmt::format("c{} s{} a{} ~{}", r.chain_id, r.step, r.attempt, r.step);
}

TEST(ChainRunner, DriftGuardRefusesJumpsAndKeepsTheBestAttemptOverALastBadOne) {
  TempDir dir("drift_jump");
  const GuardedRun run = guarded_run(dir / "jump.jsonl", jumping_answer, 3, 0.0, 0.1, 4);
  const auto& records = run.records;
  const auto& c7 = records[5];
  ASSERT_EQ(c7.id, 7u);
  // Both jumps retried; the newline of the last attempt would drop the chain: the smaller jump
  // is taken instead, and the chain goes on and is kept.
  ASSERT_EQ(c7.retries.size(), 2u);
  EXPECT_EQ(c7.retries[0], (chains::StepRetry{2, 0, "drift_jump", "c7 s2 a0 ~9"}));
  EXPECT_EQ(c7.retries[1], (chains::StepRetry{2, 2, "newline", "x\ny"}));
  EXPECT_EQ(c7.sentences[1], "c7 s2 a1 ~6");
  EXPECT_EQ(c7.sentences[2], "c7 s3 a0 ~7");  // judged against the taken D 6
  EXPECT_TRUE(c7.kept);
  EXPECT_EQ(run.summary.drift_retries, 2u);
  const auto meta = nlohmann::json::parse(slurp(meta_path(dir / "jump.jsonl")));
  EXPECT_EQ(meta.at("drift_guard").at("max_drop"), 0.1);
}

TEST(ChainRunner, DriftGuardMarginLetsSmallReturnsPass) {
  TempDir dir("drift_margin");
  // Chain 0's return, cos(0.1) - cos(0.2) = 0.0149, passes a margin of 0.02; so do chain 1's and
  // chain 5's D 0 after D 1 (1 - cos(0.1) = 0.005).
  const GuardedRun run = guarded_run(dir / "margin.jsonl", drifting_answer, 4, 0.02, kNoMaxDrop, 2);
  const auto& records = run.records;
  const RunSummary& summary = run.summary;
  EXPECT_TRUE(records[0].retries.empty());
  EXPECT_EQ(records[0].sentences[2], "c0 s3 a0 ~1");
  EXPECT_TRUE(records[1].retries.empty());
  EXPECT_EQ(summary.drift_retries, 0u);
  EXPECT_EQ(summary.retries, 1u);  // chain 5's newline
}

TEST(ChainRunner, DriftGuardOptionsAreChecked) {
  TempDir dir("drift_bad");
  FakeGenerator gen(fake());
  NullProgress p;
  std::size_t embedded = 0;
  RunOptions no_retries = options_for(dir / "a.jsonl", 2);
  no_retries.drift_guard = DriftGuard{.embed = circle_encoder(&embedded), .model = "circle"};
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), no_retries, p); }).code(), ErrorCode::Usage);
  RunOptions no_encoder = options_for(dir / "b.jsonl", 2);
  no_encoder.retries = 1;
  no_encoder.drift_guard = DriftGuard{.model = "none"};
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), no_encoder, p); }).code(), ErrorCode::Usage);
  RunOptions nan_margin = no_encoder;
  nan_margin.drift_guard = DriftGuard{.embed = circle_encoder(&embedded), .model = "c", .margin = std::nan("")};
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), nan_margin, p); }).code(), ErrorCode::Usage);
  RunOptions empty_band = no_encoder;
  empty_band.drift_guard = DriftGuard{.embed = circle_encoder(&embedded), .model = "c", .margin = -0.3, .max_drop = 0.2};
  EXPECT_EQ(expect_error([&] { run_chains(gen, all_seeds(), empty_band, p); }).code(), ErrorCode::Usage);
  EXPECT_EQ(embedded, 0u);
  EXPECT_FALSE(std::filesystem::exists(dir / "a.jsonl"));
  // An encoder that answers NaN is an error naming the text, not a silent "drift_jump".
  RunOptions nan_vectors = options_for(dir / "nan.jsonl", 2);
  nan_vectors.retries = 1;
  nan_vectors.drift_guard = DriftGuard{.embed = [](const std::vector<std::string>& texts) {
                                         return std::vector<std::vector<float>>(texts.size(), {1.0f, std::nanf("")});
                                       },
                                       .model = "nan"};
  FakeGenerator fresh(fake());
  EXPECT_NE(std::string(expect_error([&] { run_chains(fresh, all_seeds(), nan_vectors, p); }).what()).find("non-finite"),
            std::string::npos);
}

TEST(ChainRecord, RetriesRoundTrip) {
  ChainRecord r;
  r.id = 3;
  r.seed = "s";
  r.sentences = {"a"};
  r.steps = 1;
  r.retries = {{1, 0, "copy", "s"}, {1, 1, "token_limit", "long"}};
  const std::string line = format_chain_record(r);
  EXPECT_NE(line.find(",\"retries\":[{\"step\":1,\"attempt\":0,\"reason\":\"copy\",\"text\":\"s\"},"), std::string::npos) << line;
  EXPECT_EQ(parse_chain_record(line, "x:1").retries, r.retries);
  EXPECT_EQ(expect_error([] { parse_chain_record("{\"id\":1,\"seed\":\"s\",\"sentences\":[],\"guidance\":1,\"model\":\"m\",\"steps\":1,"
                                                  "\"kept\":true,\"drop_reason\":\"\",\"retries\":3}", "f:2"); }).code(),
            ErrorCode::Input);
}

TEST(ChainRecord, FormatIsStableAndRoundTrips) {
  ChainRecord r;
  r.id = 42;
  r.seed = "Caf\xC3\xA9 \"quoted\"";
  r.sentences = {"one", "two\nlines", std::string("bad \xFF byte")};
  r.guidance = 1.5;
  r.model = "m";
  r.steps = 3;
  r.kept = false;
  r.drop_reason = "newline";
  const std::string line = format_chain_record(r);
  EXPECT_EQ(line,
            "{\"id\":42,\"seed\":\"Caf\xC3\xA9 \\\"quoted\\\"\",\"sentences\":[\"one\",\"two\\nlines\",\"bad \xEF\xBF\xBD "
            "byte\"],\"guidance\":1.5,\"model\":\"m\",\"steps\":3,\"kept\":false,\"drop_reason\":\"newline\"}");
  const ChainRecord back = parse_chain_record(line, "x:1");
  EXPECT_EQ(back.id, 42u);
  EXPECT_EQ(back.seed, r.seed);
  EXPECT_EQ(back.sentences[1], "two\nlines");
  EXPECT_EQ(back.drop_reason, "newline");
  const Error e = expect_error([] { parse_chain_record("{\"id\":1}", "f.jsonl:7"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("f.jsonl:7"), std::string::npos);
  EXPECT_EQ(expect_error([] { parse_chain_record("{\"id\":-1", "f:1"); }).code(), ErrorCode::Input);
}

}  // namespace
}  // namespace rankemb::generate::test
