// Golden pin of the offline lexical chain generator: make_lexical_generator driven by
// generate::run_chains, with the options the CLI's lexical path uses (cli/cmd_generate.cpp
// make_backend: vectors_dir, wordnet_dir, guidance, seed 7, batch 16), over the 8 seeds of
// fixtures/lexical/golden_seeds.txt for 8 steps, on the checked-in 4,500-word GloVe subset
// fixtures/lexical/glove_subset and Debian's WordNet 3.0 (/usr/share/wordnet). The output file
// must equal golden_g1.5.expected.jsonl / golden_g1.expected.jsonl byte for byte, so any change
// of an edit, a score, the sampling or the record format fails here. The expected files come from
// scripts/regen/lexical_golden.sh (an already-built CLI); a deliberate change of the generator
// regenerates them with that script, and the diff of the expected files is part of the review.
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "common/fake_generator.h"
#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/lexical/lexical_generator.h"
#include "rankemb/lexical/word_vectors.h"
#include "rankemb/lexical/wordnet.h"
#include "rankemb/util/progress.h"

namespace rankemb::lexical {
namespace {
namespace fs = std::filesystem;

const fs::path kWordNetDir = "/usr/share/wordnet";

fs::path golden_dir() { return test::fixtures_dir() / "lexical"; }

// Empty when every input is present, else what is missing and how to get it.
std::string missing_assets(const fs::path& expected) {
  std::ostringstream m;
  for (const char* f : {"data.noun", "data.verb", "data.adj", "data.adv", "index.noun"})
    if (!fs::exists(kWordNetDir / f)) {
      m << "WordNet 3.0 is missing (" << (kWordNetDir / f).string()
        << "); install Debian wordnet-base: bash scripts/install-deps.sh\n";
      break;
    }
  for (const fs::path& p : {golden_dir() / "glove_subset/vocab.txt", golden_dir() / "glove_subset/embeddings.safetensors",
                            golden_dir() / "golden_seeds.txt", expected})
    if (!fs::exists(p))
      m << "golden fixture " << p.string() << " is missing; it is checked in (git checkout tests/fixtures/lexical) "
        << "and written by bash scripts/regen/lexical_golden.sh\n";
  return m.str();
}

std::string line_at(const std::string& text, std::size_t pos) {
  const std::size_t begin = text.rfind('\n', pos == 0 ? 0 : pos - 1);
  const std::size_t b = (begin == std::string::npos || pos == 0) ? 0 : begin + 1;
  const std::size_t e = text.find('\n', b);
  return text.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

void expect_golden(double guidance, const std::string& expected_name) {
  const fs::path expected_path = golden_dir() / expected_name;
  const std::string missing = missing_assets(expected_path);
  ASSERT_TRUE(missing.empty()) << missing;

  static const auto wordnet = std::make_shared<const WordNet>(WordNet::load(kWordNetDir));
  static const auto vectors = std::make_shared<const WordVectors>(WordVectors::load(golden_dir() / "glove_subset"));

  // As cli/cmd_generate.cpp make_backend for `generate --backend lexical --vectors <subset>
  // --guidance g --seed 7` (--batch defaults to 16 there).
  LexicalGeneratorOptions o;
  o.vectors_dir = golden_dir() / "glove_subset";
  o.wordnet_dir = kWordNetDir;
  o.guidance = guidance;
  o.seed = 7;
  o.batch = 16;
  auto backend = make_lexical_generator(wordnet, vectors, o);

  const generate::SeedFile seed_file = generate::read_seeds(golden_dir() / "golden_seeds.txt");
  const auto seeds = generate::select_seeds(seed_file.seeds, std::nullopt, generate::Shard{});
  ASSERT_EQ(seeds.size(), 8u);

  test::TempDir tmp("lexical_golden");
  generate::RunOptions run;
  run.steps = 8;
  run.output = tmp / "chains.jsonl";
  generate::set_seed_file(run, seed_file);
  NullProgress progress;
  const auto summary = generate::run_chains(*backend, seeds, run, progress);
  EXPECT_EQ(summary.chains_written, 8u);

  const std::string got = generate::test::slurp(run.output);
  const std::string want = generate::test::slurp(expected_path);
  if (got == want) return;
  std::size_t pos = 0, line = 1;
  while (pos < got.size() && pos < want.size() && got[pos] == want[pos]) {
    if (got[pos] == '\n') ++line;
    ++pos;
  }
  ADD_FAILURE() << "g=" << guidance << ": output differs from " << expected_path.string() << " at line " << line
                << " (byte " << pos << "; " << got.size() << " vs " << want.size() << " bytes)\n"
                << "  expected: " << line_at(want, pos) << "\n"
                << "  got:      " << line_at(got, pos) << "\n"
                << "A deliberate generator change regenerates the fixture: bash scripts/regen/lexical_golden.sh";
}

TEST(LexicalGolden, Guidance1_5MatchesExpectedChains) { expect_golden(1.5, "golden_g1.5.expected.jsonl"); }

TEST(LexicalGolden, Guidance1MatchesExpectedChains) { expect_golden(1.0, "golden_g1.expected.jsonl"); }

}  // namespace
}  // namespace rankemb::lexical
