#include "common/corpus.h"

#include <fstream>
#include <map>
#include <stdexcept>

#include "common/test_paths.h"

namespace rankemb::test {

namespace fs = std::filesystem;

std::vector<nlohmann::json> read_jsonl_fixture(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture " + path.string());
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

static std::vector<std::string> split_tab(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto p = s.find('\t', start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

const std::vector<CorpusEntry>& parity_corpus() {
  static const std::vector<CorpusEntry> corpus = [] {
    std::vector<CorpusEntry> out;
    std::map<std::string, std::vector<std::string>> files;
    int hard = 0;
    for (const auto& e : read_jsonl_fixture(fixtures_dir() / "text" / "corpus.jsonl")) {
      if (e.contains("text")) {
        out.push_back({e["text"].get<std::string>(), "hard case #" + std::to_string(hard++)});
        continue;
      }
      auto file = e["file"].get<std::string>();
      auto it = files.find(file);
      if (it == files.end()) {
        std::ifstream in(data_dir() / file, std::ios::binary);
        if (!in) throw std::runtime_error("corpus: cannot open " + (data_dir() / file).string());
        std::vector<std::string> lines;
        std::string l;
        while (std::getline(in, l)) {
          if (!l.empty() && l.back() == '\r') l.pop_back();
          lines.push_back(l);
        }
        it = files.emplace(file, std::move(lines)).first;
      }
      int line = e["line"].get<int>(), field = e["field"].get<int>();
      const std::string& row = it->second.at(static_cast<std::size_t>(line - 1));
      std::string text = field < 0 ? row : split_tab(row).at(static_cast<std::size_t>(field));
      out.push_back({text, file + ":" + std::to_string(line) + ":" + std::to_string(field)});
    }
    return out;
  }();
  return corpus;
}

}  // namespace rankemb::test
