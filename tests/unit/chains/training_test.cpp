// Chain input (src/rankemb/chains/training.h): rankemb's JSONL, the authors' list_sent CSV (checked
// against Python's csv + ast.literal_eval on tests/fixtures/chains/nasty.csv, written by
// scripts/regen/chains_csv.py), the Python string-literal parser, and every error path.
#include "rankemb/chains/training.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/util/error.h"

namespace {

namespace rt = rankemb::chains;
using Strings = std::vector<std::string>;

std::filesystem::path fixture(const std::string& name) { return rankemb::test::fixtures_dir() / "chains" / name; }

// Runs `f`, expecting Error(Input) whose message contains `needle`.
template <typename F>
void expect_input_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error, expected one mentioning '" << needle << "'";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), rankemb::ErrorCode::Input) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// ---- Python list literals ------------------------------------------------------------------------

TEST(PythonStringList, ReprForms) {
  EXPECT_EQ(rt::parse_python_string_list("[]"), Strings{});
  EXPECT_EQ(rt::parse_python_string_list("['a', 'b']"), (Strings{"a", "b"}));
  EXPECT_EQ(rt::parse_python_string_list(R"(["It's", 'say "hi"', 'both \' and "'])"),
            (Strings{"It's", "say \"hi\"", "both ' and \""}));
  EXPECT_EQ(rt::parse_python_string_list(R"(['a\\b', '\n\t\r', '\x41\x7f', '\u00e9\u200b', '\U0001F600'])"),
            (Strings{"a\\b", "\n\t\r", "A\x7f", "\xC3\xA9\xE2\x80\x8B", "\xF0\x9F\x98\x80"}));
  EXPECT_EQ(rt::parse_python_string_list(R"(['\0', '\101\1012', '\a\b\f\v'])"),
            (Strings{std::string(1, '\0'), "AA2", "\a\b\f\v"}));
  // Non-ASCII text is kept as written.
  EXPECT_EQ(rt::parse_python_string_list("['caf\xC3\xA9 \xE6\x97\xA5']"), Strings{"caf\xC3\xA9 \xE6\x97\xA5"});
}

TEST(PythonStringList, EverythingLiteralEvalAccepts) {
  // Whitespace and newlines between items, trailing comma, comments, line continuation.
  EXPECT_EQ(rt::parse_python_string_list(" [\n  'a' ,\t# first\n  \"b\",\n] \n"), (Strings{"a", "b"}));
  EXPECT_EQ(rt::parse_python_string_list("['a',\\\n 'b']"), (Strings{"a", "b"}));
  // Adjacent literals concatenate, across quote kinds and prefixes.
  EXPECT_EQ(rt::parse_python_string_list(R"(['a' "b" r'\c', u'd'])"), (Strings{"ab\\c", "d"}));
  // Raw strings: backslashes stay, an escaped quote does not close the string.
  EXPECT_EQ(rt::parse_python_string_list(R"([r'\n\'', R"\"", r'\\'])"), (Strings{"\\n\\'", "\\\"", "\\\\"}));
  // Triple quotes: raw newlines allowed (\r\n becomes \n), lone quotes inside.
  EXPECT_EQ(rt::parse_python_string_list("['''a\r\nb ' '' c''', \"\"\"x\"y\"\"\"]"), (Strings{"a\nb ' '' c", "x\"y"}));
  // Unknown escapes keep the backslash; a backslash-newline inside a string is a continuation.
  EXPECT_EQ(rt::parse_python_string_list(R"(['\q\d', '\8'])"), (Strings{"\\q\\d", "\\8"}));
  EXPECT_EQ(rt::parse_python_string_list("['ab\\\ncd']"), Strings{"abcd"});
  // Things that look like syntax inside a string are text.
  EXPECT_EQ(rt::parse_python_string_list(R"(["x', 'y", '] [', "#"])"), (Strings{"x', 'y", "] [", "#"}));
}

TEST(PythonStringList, Errors) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "expected '['"},
      {"'a'", "expected '['"},
      {"['a'", "expected ',' or ']'"},
      {"['a' 'b", "unterminated string literal"},
      {"['a'] x", "unexpected text after the list"},
      {"['a',, 'b']", "expected a string literal"},
      {"[1, 2]", "expected a string literal"},
      {"[b'a']", "bytes literal"},
      {"[f'a']", "f-string"},
      {"[ur'a']", "invalid string prefix"},
      {"['a\nb']", "end of line inside a string literal"},
      {R"(['\x4'])", "truncated \\xXX escape"},
      {R"(['\u12'])", "truncated \\uXXXX escape"},
      {R"(['\U00110000'])", "beyond U+10FFFF"},
      {R"(['\ud83d\ude00'])", "surrogate code point U+D83D"},
      {R"(['\N{BULLET}'])", "\\N{...} escapes are not supported"},
      {"['\xC3']", "invalid UTF-8"},
      {"['a'\\", "expected ',' or ']'"},
      {"['abc\\", "unterminated string literal"},
  };
  for (const auto& [text, needle] : bad) {
    SCOPED_TRACE(text);
    const std::string_view input = text;  // clang 14 cannot capture a structured binding
    expect_input_error([&] { rt::parse_python_string_list(input); }, needle);
  }
  // The offset points at the problem.
  expect_input_error([] { rt::parse_python_string_list("['ok', 'x\\x4g']"); }, "at offset 9");
}

// ---- the authors' CSV -----------------------------------------------------------------------------

TEST(ChainsCsv, NastyFixtureMatchesPython) {
  const auto expected = rankemb::test::read_jsonl_fixture(fixture("nasty.expected.jsonl"));
  const auto file = rt::read_chains(fixture("nasty.csv"));
  EXPECT_TRUE(file.malformed.empty()) << file.malformed.front();
  ASSERT_EQ(file.chains.size(), expected.size());
  int mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto want = expected[i].at("sentences").get<Strings>();
    const auto& got = file.chains[i];
    EXPECT_EQ(got.id, std::to_string(i));
    EXPECT_EQ(got.where, fixture("nasty.csv").string() + ":" + std::to_string(i + 2));
    if (got.sentences != want) {
      ++mismatches;
      ADD_FAILURE() << got.where << ": got " << nlohmann::json(got.sentences).dump() << "\nwant "
                    << nlohmann::json(want).dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(ChainsCsv, QuotingLineNumbersAndColumns) {
  // A second column before list_sent, CRLF line ends, a BOM, a blank line, a quoted field that
  // spans lines (newlines between list items), and "" escapes.
  const std::string text =
      "\xEF\xBB\xBFidx,list_sent\r\n"
      "0,\"['a', 'b']\"\r\n"
      "\r\n"
      "1,\"['c',\n 'd ,\"\"q\"\"',\n 'e']\"\r\n"
      "2,['f'; 'g']\n"
      "3,\"['h', 'i']\"";
  const auto file = rt::parse_chains_csv(text, "t.csv");
  ASSERT_EQ(file.chains.size(), 3u);
  EXPECT_EQ(file.chains[0].sentences, (Strings{"a", "b"}));
  EXPECT_EQ(file.chains[0].where, "t.csv:2");
  EXPECT_EQ(file.chains[1].sentences, (Strings{"c", "d ,\"q\"", "e"}));
  EXPECT_EQ(file.chains[1].where, "t.csv:4");
  EXPECT_EQ(file.chains[1].id, "1");
  // The last record has no final newline.
  EXPECT_EQ(file.chains[2].sentences, (Strings{"h", "i"}));
  EXPECT_EQ(file.chains[2].where, "t.csv:8");
  EXPECT_EQ(file.chains[2].id, "3");
  // Line 7, after the record on lines 4-6: "['f'; 'g']" is not a list literal.
  ASSERT_EQ(file.malformed.size(), 1u);
  EXPECT_EQ(file.malformed[0].rfind("t.csv:7: list_sent: expected ',' or ']'", 0), 0u) << file.malformed[0];
}

TEST(ChainsCsv, MalformedRecordsAreSkippedWithTheirLine) {
  const std::string text =
      "list_sent\n"
      "\"['a', 'b']\"\n"          // 2 ok
      "\"['only one']\"\n"        // 3 too short
      "\"['x', 'y']\"junk\n"      // 4 text after the closing quote
      "\"['a', 'b']\",extra\n"    // 5 too many fields
      "['a', 'b\"']\n"            // 6 quote in an unquoted field
      "\"['p', 'q']\"\n"          // 7 ok
      "\"['never', 'closed']\n";  // 8 unterminated quote swallows the rest
  const auto file = rt::parse_chains_csv(text, "m.csv");
  ASSERT_EQ(file.chains.size(), 2u);
  EXPECT_EQ(file.chains[1].where, "m.csv:7");
  EXPECT_EQ(file.chains[1].id, "5");  // data row index, counting malformed rows as pandas would
  const Strings want = {
      "m.csv:3: chain of 1 sentence(s), at least 2 needed",
      "m.csv:4: text after the closing quote of a field",
      "m.csv:5: 2 fields, the header has 1",
      "m.csv:6: quote inside an unquoted field",
      "m.csv:8: unterminated quoted field",
  };
  EXPECT_EQ(file.malformed, want);
  // Strict mode stops at the first one, naming it.
  rt::ChainReadOptions strict;
  strict.strict = true;
  expect_input_error([&] { rt::parse_chains_csv(text, "m.csv", strict); }, "m.csv:3: chain of 1 sentence(s)");
}

TEST(ChainsCsv, FileLevelErrors) {
  expect_input_error([] { rt::parse_chains_csv("", "e.csv"); }, "e.csv: empty file");
  expect_input_error([] { rt::parse_chains_csv("text\n\"['a', 'b']\"\n", "h.csv"); },
                     "h.csv:1: no 'list_sent' column in the header (columns: text)");
  expect_input_error([] { rt::parse_chains_csv("list_sent\n", "n.csv"); }, "n.csv: no usable chain (0 dropped");
  expect_input_error([] { rt::parse_chains_csv("list_sent\n\"['a']\"\n", "s.csv"); },
                     "s.csv: no usable chain (0 dropped by the generator, 1 malformed; first: s.csv:2: chain of 1");
  expect_input_error([] { rt::parse_chains_csv("\"list_sent\n", "q.csv"); }, "q.csv:1: header: unterminated");
}

TEST(ChainsCsv, TsvByExtension) {
  const auto dir = std::filesystem::temp_directory_path() / ("rankemb_chains_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "chains.tsv";
  std::ofstream(path) << "n\tlist_sent\n0\t['a, b', 'c']\n";
  const auto file = rt::read_chains(path);
  ASSERT_EQ(file.chains.size(), 1u);
  EXPECT_EQ(file.chains[0].sentences, (Strings{"a, b", "c"}));
  std::filesystem::remove_all(dir);
}

// ---- rankemb JSONL --------------------------------------------------------------------------------

TEST(ChainsJsonl, FixtureKeptDroppedMalformed) {
  const auto path = fixture("chains.jsonl");
  const auto file = rt::read_chains(path);
  const std::string p = path.string();
  ASSERT_EQ(file.chains.size(), 3u);
  EXPECT_EQ(file.chains[0].id, "c0");
  EXPECT_EQ(file.chains[0].sentences,
            (Strings{"A dog runs in the park.", "A dog is running in a park.", "An animal moves outdoors."}));
  EXPECT_EQ(file.chains[0].where, p + ":1");
  EXPECT_EQ(file.chains[1].id, "c3");
  EXPECT_EQ(file.chains[1].sentences.front(), "Snow \"melts\" \\ slowly.");
  EXPECT_EQ(file.chains[1].sentences[1], "Snow thaws \xE2\x98\x83 slowly.");
  EXPECT_EQ(file.chains[1].sentences.size(), 4u);
  EXPECT_EQ(file.chains[2].id, "7");  // a numeric id, and no "kept" field means kept
  EXPECT_EQ(file.chains[2].where, p + ":8");
  EXPECT_EQ(file.n_dropped, 2u);
  ASSERT_EQ(file.malformed.size(), 6u) << nlohmann::json(file.malformed).dump(1);
  const std::vector<std::pair<int, std::string>> want = {
      {5, "invalid JSON"},
      {6, "\"sentences\" must be an array of strings"},
      {7, "chain of 1 sentence(s), at least 2 needed"},
      {9, "expected a JSON object"},
      {11, "\"seed\" must be a string"},
      {12, "\"kept\" must be true or false"},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string prefix = p + ":" + std::to_string(want[i].first) + ": " + want[i].second;
    EXPECT_EQ(file.malformed[i].rfind(prefix, 0), 0u) << file.malformed[i] << "\nexpected prefix " << prefix;
  }
}

TEST(ChainsJsonl, OptionsAndErrors) {
  const std::string line = R"({"id":"a","seed":"s","sentences":["t"],"kept":true})";
  // min_sentences
  rt::ChainReadOptions three;
  three.min_sentences = 3;
  expect_input_error([&] { rt::parse_chains_jsonl(line + "\n", "x.jsonl", three); }, "x.jsonl: no usable chain");
  EXPECT_EQ(rt::parse_chains_jsonl(line, "x.jsonl").chains.size(), 1u);  // no final newline
  // CRLF and whitespace-only lines.
  EXPECT_EQ(rt::parse_chains_jsonl(" \t\r\n" + line + "\r\n\r\n", "x.jsonl").chains[0].where, "x.jsonl:2");
  // strict: the first malformed line, with file:line.
  rt::ChainReadOptions strict;
  strict.strict = true;
  expect_input_error([&] { rt::parse_chains_jsonl(line + "\n{\"seed\":1}\n", "y.jsonl", strict); },
                     "y.jsonl:2: \"seed\" must be a string");
  // Only dropped chains: still an error, and it says why.
  expect_input_error(
      [] { rt::parse_chains_jsonl(R"({"id":"a","seed":"s","sentences":["t"],"kept":false})", "d.jsonl"); },
      "d.jsonl: no usable chain (1 dropped by the generator, 0 malformed)");
  expect_input_error([] { rt::parse_chains_jsonl("", "e.jsonl"); }, "e.jsonl: no usable chain");
  // Invalid UTF-8 inside a JSON string is a malformed line.
  const auto f = rt::parse_chains_jsonl(line + "\n{\"seed\":\"\xFF\",\"sentences\":[\"a\"]}\n", "u.jsonl");
  ASSERT_EQ(f.malformed.size(), 1u);
  EXPECT_EQ(f.malformed[0].rfind("u.jsonl:2: invalid JSON", 0), 0u) << f.malformed[0];
  // A missing file.
  expect_input_error([] { rt::read_chains("/nonexistent/chains.jsonl"); }, "/nonexistent/chains.jsonl");
  // The format can be forced regardless of the extension.
  rt::ChainReadOptions as_csv;
  as_csv.format = rt::ChainFormat::Csv;
  expect_input_error([&] { rt::read_chains(fixture("chains.jsonl"), as_csv); }, "chains.jsonl:1: header: quote inside");
}

}  // namespace
