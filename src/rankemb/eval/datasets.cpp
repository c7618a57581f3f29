#include "rankemb/eval/datasets.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::eval {

namespace fs = std::filesystem;

namespace {

// SentEval's subset lists (senteval/sts.py), in its order; STS13 has no SMT (LDC licence).
struct YearSpec {
  int year;
  std::vector<std::string> subsets;
};
const std::vector<YearSpec>& year_specs() {
  static const std::vector<YearSpec> specs = {
      {2012, {"MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"}},
      {2013, {"FNWN", "headlines", "OnWN"}},
      {2014, {"deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"}},
      {2015, {"answers-forums", "answers-students", "belief", "headlines", "images"}},
      {2016, {"answer-answer", "headlines", "plagiarism", "postediting", "question-question"}},
  };
  return specs;
}

const YearSpec& year_spec(int year) {
  for (const auto& s : year_specs())
    if (s.year == year) return s;
  fail(ErrorCode::Usage, "no STS test set for year {} (have 2012 ... 2016)", year);
}

std::string where(const fs::path& p, std::size_t line) { return fmt::format("{}:{}", p.string(), line); }

// Whole file, checked to be UTF-8 (Python's strict utf-8 decoding, which SentEval uses).
std::string read_text(const fs::path& p) {
  std::string text = io::read_file(p);
  unicode::require_utf8(text, p.string());
  return text;
}

using unicode::python_strip;

// Lines as Python's text-mode file iteration yields them (universal newlines: \n, \r, \r\n),
// without their terminators. A final terminator does not start another line.
std::vector<std::string_view> universal_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0, i = 0;
  while (i < text.size()) {
    if (text[i] == '\n' || text[i] == '\r') {
      lines.push_back(text.substr(start, i - start));
      i += (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
      start = i;
    } else {
      ++i;
    }
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

std::vector<std::string_view> split_tabs(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t t = s.find('\t', start);
    if (t == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, t - start));
    start = t + 1;
  }
}

// A gold score as Python's float() reads it (surrounding whitespace and a leading '+' allowed),
// then range-checked. nullopt + `reason` when the row must be skipped.
std::optional<double> parse_score(std::string_view field, double lo, double hi, std::string& reason) {
  std::string_view s = python_strip(field);
  std::string_view num = s;
  if (!num.empty() && num.front() == '+') num.remove_prefix(1);
  double v = 0.0;
  const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (num.empty() || ec != std::errc() || ptr != num.data() + num.size()) {
    reason = fmt::format("score \"{}\" is not a number", field);
    return std::nullopt;
  }
  if (!(v >= lo && v <= hi)) {  // also rejects NaN
    reason = fmt::format("score {} is outside [{}, {}]", s, lo, hi);
    return std::nullopt;
  }
  return v;
}

std::string sentence_text(std::string_view field, TextVariant variant) {
  return variant == TextVariant::SentEval ? split_join_whitespace(field) : std::string(field);
}

std::string two_digits(int year) { return fmt::format("{:02d}", year % 100); }

// SentEval's STSEval.loadFile for one subset: input lines split on tabs (the first two fields
// are the sentences), gold lines aligned by index, empty gold lines dropped.
void load_senteval_subset(const fs::path& dir, const std::string& subset, StsDataset& ds) {
  const fs::path input = dir / ("STS.input." + subset + ".txt");
  const fs::path gold = dir / ("STS.gs." + subset + ".txt");
  const std::string input_text = read_text(input);
  const std::string gold_text = read_text(gold);
  const auto in_lines = python_splitlines(input_text);
  const auto gs_lines = python_splitlines(gold_text);
  RANKEMB_CHECK(!in_lines.empty(), ErrorCode::Input, "{}: no sentence pairs", input.string());
  RANKEMB_CHECK(in_lines.size() == gs_lines.size(), ErrorCode::Input, "{} has {} lines but {} has {}; line i of one scores line i of the other",
                gold.string(), gs_lines.size(), input.string(), in_lines.size());
  StsSubset out{subset, {}};
  for (std::size_t i = 0; i < in_lines.size(); ++i) {
    const auto fields = split_tabs(in_lines[i]);
    RANKEMB_CHECK(fields.size() >= 2, ErrorCode::Input, "{}: expected two tab-separated sentences, found {} field(s)",
                  where(input, i + 1), fields.size());
    if (gs_lines[i].empty()) {
      ++ds.n_unscored;
      continue;
    }
    std::string reason;
    const auto score = parse_score(gs_lines[i], 0.0, 5.0, reason);
    if (!score) {
      ds.skipped.push_back({where(gold, i + 1), reason});
      continue;
    }
    out.pairs.push_back({sentence_text(fields[0], TextVariant::SentEval), sentence_text(fields[1], TextVariant::SentEval), *score,
                         where(input, i + 1)});
  }
  ds.subsets.push_back(std::move(out));
}

// sts1x/sts1x.tsv: header "subset score sentence1 sentence2", one row per scored pair.
void load_raw_year(const fs::path& file, const YearSpec& spec, StsDataset& ds) {
  const std::string text = read_text(file);
  const auto lines = universal_lines(text);
  const std::array<std::string_view, 4> header = {"subset", "score", "sentence1", "sentence2"};
  RANKEMB_CHECK(!lines.empty() && split_tabs(lines[0]) == std::vector<std::string_view>(header.begin(), header.end()), ErrorCode::Input,
                "{}: expected the header \"subset<TAB>score<TAB>sentence1<TAB>sentence2\"", where(file, 1));
  for (const auto& name : spec.subsets) ds.subsets.push_back({name, {}});
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split_tabs(lines[i]);
    RANKEMB_CHECK(f.size() == 4, ErrorCode::Input, "{}: expected 4 tab-separated fields, found {}", where(file, i + 1), f.size());
    StsSubset* subset = nullptr;
    for (auto& s : ds.subsets)
      if (s.name == f[0]) subset = &s;
    RANKEMB_CHECK(subset != nullptr, ErrorCode::Input, "{}: unknown subset \"{}\" for STS{}", where(file, i + 1), f[0], two_digits(spec.year));
    std::string reason;
    const auto score = parse_score(f[1], 0.0, 5.0, reason);
    if (!score) {
      ds.skipped.push_back({where(file, i + 1), reason});
      continue;
    }
    subset->pairs.push_back({std::string(f[2]), std::string(f[3]), *score, where(file, i + 1)});
  }
}

// A tab-separated pair file read line by line like SentEval's STS-B / SICK loaders: optional
// header, each line stripped and split on tabs, fixed columns for the sentences and the score.
struct PairColumns {
  std::size_t s1, s2, score, min_fields;
  bool header;
  bool strip;  // SentEval strips each line before splitting
  double lo, hi;
};

void load_pair_file(const fs::path& file, const PairColumns& c, TextVariant variant, StsDataset& ds) {
  const std::string text = read_text(file);
  const auto lines = universal_lines(text);
  RANKEMB_CHECK(lines.size() > (c.header ? 1u : 0u), ErrorCode::Input, "{}: no sentence pairs", file.string());
  StsSubset out{ds.split, {}};
  for (std::size_t i = c.header ? 1 : 0; i < lines.size(); ++i) {
    const auto f = split_tabs(c.strip ? python_strip(lines[i]) : lines[i]);
    RANKEMB_CHECK(f.size() >= c.min_fields, ErrorCode::Input, "{}: expected at least {} tab-separated fields, found {}",
                  where(file, i + 1), c.min_fields, f.size());
    std::string reason;
    const auto score = parse_score(f[c.score], c.lo, c.hi, reason);
    if (!score) {
      ds.skipped.push_back({where(file, i + 1), reason});
      continue;
    }
    out.pairs.push_back({sentence_text(f[c.s1], variant), sentence_text(f[c.s2], variant), *score, where(file, i + 1)});
  }
  ds.subsets.push_back(std::move(out));
}

void check_split(std::string_view split, std::string_view what) {
  RANKEMB_CHECK(split == "train" || split == "dev" || split == "test", ErrorCode::Usage,
                "{} has splits train, dev and test, not \"{}\"", what, split);
}

// MR/CR/SUBJ/MPQA (senteval/binary.py loadFile): str.splitlines(), every line kept.
void add_lines(const fs::path& file, int label, TransferSplit& out) {
  const std::string text = read_text(file);
  for (const auto line : python_splitlines(text)) {
    out.text.push_back(split_join_whitespace(line));
    out.label.push_back(label);
  }
}

int parse_label(std::string_view field, int n_classes, const fs::path& file, std::size_t line) {
  int v = -1;
  const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  RANKEMB_CHECK(ec == std::errc() && ptr == field.data() + field.size() && v >= 0 && v < n_classes, ErrorCode::Input,
                "{}: label \"{}\" is not one of 0 ... {}", where(file, line), field, n_classes - 1);
  return v;
}

// SST2 here is "<label> <sentence>" per line (harvardnlp's form of SentEval's sentiment-*).
void load_sst2(const fs::path& file, TransferSplit& out) {
  const std::string text = read_text(file);
  const auto lines = universal_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view l = python_strip(lines[i]);
    const std::size_t sp = l.find(' ');
    RANKEMB_CHECK(sp != std::string_view::npos, ErrorCode::Input, "{}: expected \"<label> <sentence>\"", where(file, i + 1));
    out.label.push_back(parse_label(l.substr(0, sp), 2, file, i + 1));
    out.text.push_back(split_join_whitespace(l.substr(sp + 1)));
  }
}

// senteval/trec.py loadFile: "COARSE:fine question", the coarse class is the label.
void load_trec(const fs::path& file, const std::vector<std::string>& classes, TransferSplit& out) {
  const std::string text = read_text(file);
  const auto lines = universal_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view l = python_strip(lines[i]);
    const std::size_t colon = l.find(':');
    const std::size_t sp = colon == std::string_view::npos ? colon : l.find(' ', colon);
    RANKEMB_CHECK(sp != std::string_view::npos, ErrorCode::Input, "{}: expected \"COARSE:fine question\"", where(file, i + 1));
    const std::string_view target = l.substr(0, colon);
    int label = -1;
    for (std::size_t c = 0; c < classes.size(); ++c)
      if (classes[c] == target) label = static_cast<int>(c);
    RANKEMB_CHECK(label >= 0, ErrorCode::Input, "{}: unknown TREC class \"{}\"", where(file, i + 1), target);
    out.label.push_back(label);
    out.text.push_back(split_join_whitespace(l.substr(sp + 1)));
  }
}

// senteval/mrpc.py loadFile: header skipped, line.strip().split('\t'), label in column 0,
// sentences in columns 3 and 4.
void load_mrpc(const fs::path& file, TransferSplit& out) {
  const std::string text = read_text(file);
  const auto lines = universal_lines(text);
  RANKEMB_CHECK(lines.size() > 1, ErrorCode::Input, "{}: no sentence pairs", file.string());
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split_tabs(python_strip(lines[i]));
    RANKEMB_CHECK(f.size() >= 5, ErrorCode::Input, "{}: expected 5 tab-separated fields, found {}", where(file, i + 1), f.size());
    out.label.push_back(parse_label(f[0], 2, file, i + 1));
    out.text.push_back(split_join_whitespace(f[3]));
    out.text2.push_back(split_join_whitespace(f[4]));
  }
}

std::vector<std::string> string_list(const nlohmann::json& j, const char* key, const std::string& at) {
  const auto it = j.find(key);
  RANKEMB_CHECK(it != j.end() && it->is_array(), ErrorCode::Input, "{}: \"{}\" must be a list of strings", at, key);
  std::vector<std::string> out;
  for (const auto& v : *it) {
    RANKEMB_CHECK(v.is_string(), ErrorCode::Input, "{}: \"{}\" must be a list of strings", at, key);
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

const std::vector<std::string>& transfer_task_names() {
  static const std::vector<std::string> names = {"MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC"};
  return names;
}

TransferDataset load_transfer(const fs::path& data_dir, std::string_view task) {
  TransferDataset ds;
  ds.name = std::string(task);
  const fs::path t = data_dir / "transfer";
  auto binary = [&](const char* dir, const char* pos, const char* neg, std::vector<std::string> classes) {
    ds.cross_validation = true;
    ds.classes = std::move(classes);
    add_lines(t / dir / pos, 1, ds.train);
    add_lines(t / dir / neg, 0, ds.train);
  };
  if (task == "MR") {
    binary("mr", "rt-polarity.pos", "rt-polarity.neg", {"negative", "positive"});
  } else if (task == "CR") {
    binary("cr", "custrev.pos", "custrev.neg", {"negative", "positive"});
  } else if (task == "SUBJ") {
    binary("subj", "subj.objective", "subj.subjective", {"subjective", "objective"});
  } else if (task == "MPQA") {
    binary("mpqa", "mpqa.pos", "mpqa.neg", {"negative", "positive"});
  } else if (task == "SST2") {
    ds.classes = {"negative", "positive"};
    load_sst2(t / "sst2" / "stsa.binary.train", ds.train);
    load_sst2(t / "sst2" / "stsa.binary.dev", ds.dev);
    load_sst2(t / "sst2" / "stsa.binary.test", ds.test);
  } else if (task == "TREC") {
    ds.classes = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"};
    load_trec(t / "trec" / "TREC.train", ds.classes, ds.train);
    load_trec(t / "trec" / "TREC.test", ds.classes, ds.test);
  } else if (task == "MRPC") {
    ds.classes = {"not paraphrase", "paraphrase"};
    load_mrpc(t / "mrpc" / "msr_paraphrase_train.txt", ds.train);
    load_mrpc(t / "mrpc" / "msr_paraphrase_test.txt", ds.test);
  } else {
    fail(ErrorCode::Usage, "unknown transfer task \"{}\" (expected MR, CR, SUBJ, MPQA, SST2, TREC or MRPC)", task);
  }
  return ds;
}

RerankDataset load_rerank_jsonl(const fs::path& file) {
  const std::string text = read_text(file);
  const auto lines = universal_lines(text);
  RerankDataset ds;
  ds.name = file.stem().string();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (python_strip(lines[i]).empty()) continue;
    const std::string at = where(file, i + 1);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorCode::Input, "{}: bad JSON: {}", at, e.what());
    }
    RANKEMB_CHECK(j.is_object() && j.contains("query") && j["query"].is_string(), ErrorCode::Input,
                  "{}: expected an object with a string \"query\"", at);
    ds.queries.push_back({j["query"].get<std::string>(), string_list(j, "positive", at), string_list(j, "negative", at), at});
  }
  return ds;
}

RerankDataset load_trecqa(const fs::path& data_dir, std::string_view split) {
  check_split(split, "TREC-QA");
  return load_rerank_jsonl(data_dir / "rerank" / "trecqa" / fmt::format("trecqa_{}.jsonl", split));
}

fs::path default_data_dir() {
  const char* env = std::getenv("RANKEMB_DATA_DIR");
  if (env != nullptr && *env != '\0') return fs::path(env);
  return fs::path("..") / "shared" / "data";
}

std::string_view to_string(TextVariant v) { return v == TextVariant::SentEval ? "senteval" : "raw"; }

TextVariant parse_text_variant(std::string_view name) {
  if (name == "senteval") return TextVariant::SentEval;
  if (name == "raw") return TextVariant::Raw;
  fail(ErrorCode::Usage, "unknown text variant \"{}\" (expected senteval or raw)", name);
}

std::size_t StsDataset::n_pairs() const {
  std::size_t n = 0;
  for (const auto& s : subsets) n += s.pairs.size();
  return n;
}

std::string split_join_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0, token_start = std::string_view::npos;
  auto flush = [&](std::size_t end) {
    if (token_start == std::string_view::npos) return;
    if (!out.empty()) out += ' ';
    out.append(text.substr(token_start, end - token_start));
    token_start = std::string_view::npos;
  };
  while (pos < text.size()) {
    const std::size_t start = pos;
    const char32_t cp = unicode::next_codepoint(text, pos);
    if (unicode::is_python_space(cp)) {
      flush(start);
    } else if (token_start == std::string_view::npos) {
      token_start = start;
    }
  }
  flush(text.size());
  return out;
}

std::vector<std::string_view> python_splitlines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const std::size_t at = pos;
    const char32_t cp = unicode::next_codepoint(text, pos);
    if (!unicode::is_python_line_break(cp)) continue;
    lines.push_back(text.substr(start, at - start));
    if (cp == U'\r' && pos < text.size() && text[pos] == '\n') ++pos;
    start = pos;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

StsDataset load_sts_year(const fs::path& data_dir, int year, TextVariant variant) {
  const YearSpec& spec = year_spec(year);
  StsDataset ds;
  ds.name = "STS" + two_digits(year);
  ds.split = "test";
  ds.variant = variant;
  if (variant == TextVariant::SentEval) {
    const fs::path dir = data_dir / "senteval" / "STS" / (ds.name + "-en-test");
    for (const auto& subset : spec.subsets) load_senteval_subset(dir, subset, ds);
  } else {
    const std::string lower = "sts" + two_digits(year);
    load_raw_year(data_dir / lower / (lower + ".tsv"), spec, ds);
  }
  return ds;
}

StsDataset load_stsb(const fs::path& data_dir, std::string_view split, TextVariant variant) {
  check_split(split, "STS-B");
  StsDataset ds;
  ds.name = "STSBenchmark";
  ds.split = std::string(split);
  ds.variant = variant;
  if (variant == TextVariant::SentEval) {
    // senteval/sts.py STSBenchmarkEval.loadFile: no header, line.strip().split('\t'), columns 4-6.
    load_pair_file(data_dir / "senteval" / "STS" / "STSBenchmark" / fmt::format("sts-{}.csv", split),
                   {.s1 = 5, .s2 = 6, .score = 4, .min_fields = 7, .header = false, .strip = true, .lo = 0.0, .hi = 5.0}, variant, ds);
  } else {
    // stsb-<split>.tsv: header "genre file year sid score sentence1 sentence2".
    load_pair_file(data_dir / "stsb" / fmt::format("stsb-{}.tsv", split),
                   {.s1 = 5, .s2 = 6, .score = 4, .min_fields = 7, .header = true, .strip = false, .lo = 0.0, .hi = 5.0}, variant, ds);
  }
  return ds;
}

StsDataset load_sick_r(const fs::path& data_dir, std::string_view split, TextVariant variant) {
  check_split(split, "SICK-R");
  StsDataset ds;
  ds.name = "SICKRelatedness";
  ds.split = std::string(split);
  ds.variant = variant;
  const std::string file = split == "train" ? "SICK_train.txt" : split == "dev" ? "SICK_trial.txt" : "SICK_test_annotated.txt";
  // senteval/sick.py loadFile: skip the header, line.strip().split('\t'), columns 1-3. The raw
  // variant reads the same columns of ../sick without stripping or re-joining.
  const bool senteval = variant == TextVariant::SentEval;
  load_pair_file(data_dir / (senteval ? "senteval/SICK" : "sick") / file,
                 {.s1 = 1, .s2 = 2, .score = 3, .min_fields = 4, .header = true, .strip = senteval, .lo = 1.0, .hi = 5.0}, variant, ds);
  return ds;
}

}  // namespace rankemb::eval
