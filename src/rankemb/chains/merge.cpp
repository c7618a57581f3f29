#include "rankemb/chains/merge.h"

#include <algorithm>
#include <optional>
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

// The meta keys that must agree between shards (shard itself differs by design).
nlohmann::json shared_meta(const nlohmann::json& meta) {
  nlohmann::json j = meta;
  if (j.is_object()) j.erase("shard");
  return j;
}
}  // namespace

MergeSummary merge_chain_shards(const std::vector<fs::path>& inputs, const fs::path& output) {
  if (inputs.empty()) fail(ErrorCode::Usage, "chains merge: no input files");
  for (const auto& in : inputs)
    if (fs::exists(output) && fs::exists(in) && fs::equivalent(in, output))
      fail(ErrorCode::Usage, "chains merge: the output {} is also an input", output.string());

  MergeSummary summary;
  std::vector<Line> lines;
  // The first record seen fixes model/guidance/steps; later records are compared against it.
  std::optional<ChainRecord> reference;
  std::string reference_where;
  std::optional<nlohmann::json> meta_ref;
  std::string meta_ref_file;
  for (const auto& in : inputs) {
    const ChainLines file = read_chain_lines(in);
    if (file.unfinished())
      fail(ErrorCode::Input, "{}:{}: the last line is unfinished (an interrupted run? finish it with resume first)",
           in.string(), file.unfinished_line());
    for (const auto& line : file.lines) {
      std::string where = file.where(line);
      ChainRecord r = parse_chain_record(file.view(line), where);
      if (!reference) {
        reference = r;
        reference_where = where;
      } else if (r.model != reference->model || r.guidance != reference->guidance || r.steps != reference->steps) {
        fail(ErrorCode::Input,
             "{}: chain from model \"{}\" (guidance {}, steps {}) cannot be merged with {} (model \"{}\", guidance {}, "
             "steps {})", where, r.model, r.guidance, r.steps, reference_where, reference->model, reference->guidance,
             reference->steps);
      }
      if (r.kept) ++summary.kept;
      else ++summary.dropped;
      lines.push_back(Line{r.id, std::string(file.view(line)), std::move(where)});
    }
    const fs::path mp = meta_path(in);
    if (!fs::exists(mp)) continue;  // a copied shard without its sidecar: the records were checked
    nlohmann::json m = shared_meta(io::read_json(mp, ErrorCode::Input));
    if (!meta_ref) {
      meta_ref = std::move(m);
      meta_ref_file = mp.string();
    } else if (m != *meta_ref) {
      fail(ErrorCode::Input, "{} and {} describe different runs (seed file, settings or limit differ): {} vs {}",
             meta_ref_file, mp.string(), meta_ref->dump(), m.dump());
    }
  }
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.id < b.id; });
  for (std::size_t i = 1; i < lines.size(); ++i)
    if (lines[i].id == lines[i - 1].id)
      fail(ErrorCode::Input, "chain id {} appears twice: {} and {}", lines[i].id, lines[i - 1].where, lines[i].where);
  io::write_atomic(output, [&](std::ostream& os) {
    for (const auto& l : lines) os << l.text << '\n';
  });
  summary.files = inputs.size();
  summary.chains = lines.size();
  return summary;
}

}  // namespace rankemb::chains
