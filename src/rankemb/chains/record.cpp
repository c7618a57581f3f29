#include "rankemb/chains/record.h"

#include <nlohmann/json.hpp>

#include "rankemb/chains/chain_file.h"
#include "rankemb/util/error.h"

namespace rankemb::chains {

std::string format_chain_record(const ChainRecord& r) {
  // ordered_json keeps the documented key order; `replace` maps invalid UTF-8 (an LLM cut off at
  // its token limit inside a multi-byte character) to U+FFFD instead of throwing mid-run.
  nlohmann::ordered_json j;
  j["id"] = r.id;
  j["seed"] = r.seed;
  j["sentences"] = r.sentences;
  j["guidance"] = r.guidance;
  j["model"] = r.model;
  j["steps"] = r.steps;
  j["kept"] = r.kept;
  j["drop_reason"] = r.drop_reason;
  if (!r.retries.empty()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const StepRetry& t : r.retries) list.push_back({{"step", t.step}, {"attempt", t.attempt}, {"reason", t.reason}, {"text", t.text}});
    j["retries"] = std::move(list);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {
template <typename T>
T field(const nlohmann::json& j, const char* key, std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(ErrorCode::Input, "{}: chain record has no \"{}\"", where, key);
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(ErrorCode::Input, "{}: chain record field \"{}\" has the wrong type ({})", where, key, it->type_name());
  }
}
}  // namespace

ChainRecord parse_chain_record(std::string_view line, std::string_view where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::Input, "{}: invalid JSON in chain record ({})", where, e.what());
  }
  if (!j.is_object()) fail(ErrorCode::Input, "{}: chain record is not a JSON object", where);
  const auto id = j.find("id");
  if (id == j.end() || !id->is_number_unsigned())
    fail(ErrorCode::Input, "{}: chain record \"id\" must be a non-negative integer", where);
  ChainRecord r;
  r.id = id->get<std::uint64_t>();
  r.seed = field<std::string>(j, "seed", where);
  r.sentences = field<std::vector<std::string>>(j, "sentences", where);
  r.guidance = field<double>(j, "guidance", where);
  r.model = field<std::string>(j, "model", where);
  r.steps = field<int>(j, "steps", where);
  r.kept = field<bool>(j, "kept", where);
  r.drop_reason = field<std::string>(j, "drop_reason", where);
  if (const auto it = j.find("retries"); it != j.end()) {
    if (!it->is_array()) fail(ErrorCode::Input, "{}: chain record field \"retries\" must be an array", where);
    for (const auto& t : *it) {
      if (!t.is_object()) fail(ErrorCode::Input, "{}: each of \"retries\" must be an object", where);
      r.retries.push_back({field<int>(t, "step", where), field<int>(t, "attempt", where), field<std::string>(t, "reason", where),
                           field<std::string>(t, "text", where)});
    }
  }
  return r;
}

std::vector<ChainRecord> read_chain_records(const std::filesystem::path& path, bool* unfinished) {
  const ChainLines file = read_chain_lines(path);
  if (unfinished) *unfinished = file.unfinished();
  std::vector<ChainRecord> records;
  records.reserve(file.lines.size());
  for (const auto& line : file.lines) records.push_back(parse_chain_record(file.view(line), file.where(line)));
  return records;
}

}  // namespace rankemb::chains
