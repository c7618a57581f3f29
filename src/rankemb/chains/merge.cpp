#include "rankemb/chains/merge.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rankemb/chains/chain_file.h"
#include "rankemb/chains/record.h"
#include "rankemb/chains/settings.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::chains {

namespace fs = std::filesystem;

namespace {
struct Line {
  std::uint64_t id = 0;
  std::string text;   // the line as written, without '\n'
  std::string where;  // file:line
};

// The records of all inputs; the first record fixes model/guidance/steps for the others.
class RecordSet {
 public:
  std::size_t add_file(const fs::path& in, MergeSummary& summary) {
    const ChainLines file = read_chain_lines(in);
    if (file.unfinished())
      fail(ErrorCode::Input, "{}:{}: the last line is unfinished (an interrupted run? finish it with resume first)",
           in.string(), file.unfinished_line());
    for (const auto& line : file.lines) {
      std::string where = file.where(line);
      const ChainRecord r = parse_chain_record(file.view(line), where);
      check_compatible(r, where);
      if (r.kept) ++summary.kept;
      else ++summary.dropped;
      lines_.push_back(Line{r.id, std::string(file.view(line)), std::move(where)});
    }
    return file.lines.size();
  }

  // In id order; Error(Input) naming both places for an id seen twice.
  std::vector<Line> sorted() {
    std::stable_sort(lines_.begin(), lines_.end(), [](const Line& a, const Line& b) { return a.id < b.id; });
    for (std::size_t i = 1; i < lines_.size(); ++i)
      if (lines_[i].id == lines_[i - 1].id)
        fail(ErrorCode::Input, "chain id {} appears twice: {} and {}", lines_[i].id, lines_[i - 1].where, lines_[i].where);
    return std::move(lines_);
  }

 private:
  void check_compatible(const ChainRecord& r, const std::string& where) {
    if (!reference_) {
      reference_ = r;
      reference_where_ = where;
    } else if (r.model != reference_->model || r.guidance != reference_->guidance || r.steps != reference_->steps) {
      fail(ErrorCode::Input,
           "{}: chain from model \"{}\" (guidance {}, steps {}) cannot be merged with {} (model \"{}\", guidance {}, "
           "steps {})", where, r.model, r.guidance, r.steps, reference_where_, reference_->model, reference_->guidance,
           reference_->steps);
    }
  }

  std::vector<Line> lines_;
  std::optional<ChainRecord> reference_;
  std::string reference_where_;
};

// What the sidecars say: the inputs are shards of one run (same settings but the shard), each
// shard i/N appears once, all N are there, and each holds as many chains as it had seeds.
class ShardSet {
 public:
  void add(const fs::path& input, std::size_t records) {
    const fs::path mp = meta_path(input);
    if (!fs::exists(mp)) {  // a copied shard without its sidecar: the records were checked
      ++without_sidecar_;
      return;
    }
    nlohmann::json m = io::read_json(mp, ErrorCode::Input);
    RANKEMB_CHECK(m.is_object() && m.contains("shard") && m.at("shard").is_string(), ErrorCode::Input,
                  "{}: no \"shard\" in the run settings", mp.string());
    const Shard shard = parse_shard(m.at("shard").get<std::string>());
    if (const auto it = m.find("seeds"); it != m.end() && it->is_number_unsigned() && it->get<std::size_t>() != records)
      fail(ErrorCode::Input, "{}: holds {} chains of the {} seeds of shard {} (a run killed before it finished? "
           "resume it first)", input.string(), records, it->get<std::size_t>(), format_shard(shard));
    m.erase("shard");
    m.erase("seeds");
    if (!reference_) {
      reference_ = std::move(m);
      reference_file_ = mp.string();
      count_ = shard.count;
    } else if (m != *reference_ || shard.count != count_) {
      fail(ErrorCode::Input, "{} and {} describe different runs (seed file, settings, limit or shard count differ): {} vs {}",
           reference_file_, mp.string(), reference_->dump(), m.dump());
    }
    if (!seen_.insert(shard.index).second) twice_ = fmt::format("{}: shard {} is given twice", input.string(), format_shard(shard));
  }

  // Only when every input has its sidecar can the set of shards be known.
  void check_complete() const {
    if (!reference_ || without_sidecar_ > 0) return;
    if (!twice_.empty()) fail(ErrorCode::Input, "{}", twice_);
    for (std::size_t i = 0; i < count_; ++i)
      if (!seen_.contains(i))
        fail(ErrorCode::Input, "shard {} of the run in {} is missing from the inputs ({} of {} given)",
             format_shard({i, count_}), reference_file_, seen_.size(), count_);
  }

 private:
  std::optional<nlohmann::json> reference_;
  std::string reference_file_;
  std::size_t count_ = 1;
  std::set<std::size_t> seen_;
  std::size_t without_sidecar_ = 0;
  std::string twice_;
};
}  // namespace

MergeSummary merge_chain_shards(const std::vector<fs::path>& inputs, const fs::path& output) {
  if (inputs.empty()) fail(ErrorCode::Usage, "chains merge: no input files");
  io::check_not_an_input(output, inputs);
  MergeSummary summary;
  RecordSet records;
  ShardSet shards;
  for (const auto& in : inputs) shards.add(in, records.add_file(in, summary));
  const std::vector<Line> lines = records.sorted();
  shards.check_complete();
  io::write_atomic(output, [&](std::ostream& os) {
    for (const auto& l : lines) os << l.text << '\n';
  });
  summary.files = inputs.size();
  summary.chains = lines.size();
  return summary;
}

}  // namespace rankemb::chains
