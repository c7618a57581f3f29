#include "rankemb/search/index.h"

#include <cstdint>
#include <cmath>
#include <fstream>
#include <unordered_set>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::search {

namespace fs = std::filesystem;
using nlohmann::json;

void l2_normalize(std::vector<float>& row) {
  double sum = 0;
  for (float v : row) sum += double(v) * v;
  if (sum <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& v : row) v *= inv;
}

namespace {

// Normalized rows packed into one row-major buffer; all rows must have `dim` floats.
std::vector<float> pack(Rows& rows, std::size_t dim, const char* what) {
  std::vector<float> flat;
  flat.reserve(rows.size() * dim);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].size() != dim) fail(ErrorCode::Usage, "{} {} has {} values, expected {}", what, i, rows[i].size(), dim);
    l2_normalize(rows[i]);
    flat.insert(flat.end(), rows[i].begin(), rows[i].end());
  }
  return flat;
}

}  // namespace

VectorIndex::VectorIndex() = default;
VectorIndex::~VectorIndex() = default;
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;

VectorIndex VectorIndex::build(Rows rows, const IndexSettings& settings) {
  RANKEMB_CHECK(!rows.empty() && !rows.front().empty(), ErrorCode::Usage, "nothing to index");
  const auto dim = rows.front().size();
  const std::vector<float> flat = pack(rows, dim, "vector");
  VectorIndex v;
  if (settings.kind == "flat") {
    v.index_ = std::make_unique<faiss::IndexFlatIP>(static_cast<std::int64_t>(dim));
  } else if (settings.kind == "hnsw") {
    RANKEMB_CHECK(settings.hnsw_m >= 2 && settings.hnsw_m <= 512, ErrorCode::Usage, "hnsw M must be 2..512, got {}", settings.hnsw_m);
    auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim), settings.hnsw_m, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = settings.ef_construction;
    hnsw->hnsw.efSearch = settings.ef_search;
    v.index_ = std::move(hnsw);
  } else {
    fail(ErrorCode::Usage, "index kind \"{}\" is not supported (flat, hnsw)", settings.kind);
  }
  v.index_->add(static_cast<std::int64_t>(rows.size()), flat.data());
  return v;
}

std::vector<std::vector<Hit>> VectorIndex::search(Rows queries, std::size_t k) const {
  std::vector<std::vector<Hit>> out(queries.size());
  k = std::min(k, size());
  if (queries.empty() || k == 0) return out;
  const std::vector<float> flat = pack(queries, dim(), "query");
  std::vector<float> scores(queries.size() * k);
  std::vector<std::int64_t> labels(queries.size() * k);
  index_->search(static_cast<std::int64_t>(queries.size()), flat.data(), static_cast<std::int64_t>(k), scores.data(),
                 labels.data());
  for (std::size_t q = 0; q < queries.size(); ++q)
    for (std::size_t j = 0; j < k; ++j)
      if (labels[q * k + j] >= 0) out[q].push_back({labels[q * k + j], scores[q * k + j]});
  return out;
}

std::size_t VectorIndex::size() const { return index_ ? static_cast<std::size_t>(index_->ntotal) : 0; }
std::size_t VectorIndex::dim() const { return index_ ? static_cast<std::size_t>(index_->d) : 0; }

void VectorIndex::write(const fs::path& file) const {
  try {
    faiss::write_index(index_.get(), file.c_str());
  } catch (const faiss::FaissException& e) {
    fail(ErrorCode::Other, "{}: cannot write the index: {}", file.string(), e.what());
  }
}

VectorIndex VectorIndex::read(const fs::path& file, int ef_search) {
  VectorIndex v;
  try {
    v.index_.reset(faiss::read_index(file.c_str()));
  } catch (const faiss::FaissException& e) {
    fail(ErrorCode::Input, "{}: not a readable FAISS index: {}", file.string(), e.what());
  }
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(v.index_.get())) hnsw->hnsw.efSearch = ef_search;
  return v;
}

double recall_at_k(const std::vector<std::vector<Hit>>& exact, const std::vector<std::vector<Hit>>& approx, std::size_t k) {
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t q = 0; q < exact.size() && q < approx.size(); ++q) {
    std::unordered_set<std::int64_t> truth;
    for (std::size_t j = 0; j < exact[q].size() && j < k; ++j) truth.insert(exact[q][j].position);
    if (truth.empty()) continue;
    std::size_t found = 0;
    for (std::size_t j = 0; j < approx[q].size() && j < k; ++j) found += truth.count(approx[q][j].position);
    sum += double(found) / double(truth.size());
    ++n;
  }
  return n ? sum / double(n) : 1.0;
}

namespace {

json info_json(const IndexInfo& i) {
  json j = {{"format", "rankemb-index/1"},
            {"model", i.model},
            {"corpus", i.corpus},
            {"count", i.count},
            {"dim", i.dim},
            {"metric", "cosine (inner product of normalized vectors)"},
            {"kind", i.settings.kind},
            {"probe_sentence", kProbeSentence},
            {"probe", i.probe},
            {"precision", i.precision}};
  if (i.settings.kind == "hnsw")
    j["hnsw"] = {{"M", i.settings.hnsw_m}, {"ef_construction", i.settings.ef_construction}, {"ef_search", i.settings.ef_search}};
  j["recall_at_10"] = i.recall_at_10 ? json(*i.recall_at_10) : json(nullptr);
  return j;
}

template <typename T>
T field(const json& j, const char* key, const fs::path& file) {
  if (!j.contains(key)) fail(ErrorCode::Input, "{}: field \"{}\" is missing", file.string(), key);
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(ErrorCode::Input, "{}: field \"{}\" has the wrong type ({})", file.string(), key, j.at(key).type_name());
  }
}

IndexInfo parse_info(const fs::path& file) {
  const json j = io::read_json(file);
  if (!j.is_object()) fail(ErrorCode::Input, "{}: not an index description", file.string());
  if (field<std::string>(j, "format", file) != "rankemb-index/1")
    fail(ErrorCode::Input, "{}: field \"format\" is not rankemb-index/1", file.string());
  IndexInfo i;
  i.model = field<std::string>(j, "model", file);
  i.corpus = j.value("corpus", "");
  i.count = field<std::size_t>(j, "count", file);
  i.dim = field<std::size_t>(j, "dim", file);
  i.settings.kind = field<std::string>(j, "kind", file);
  i.probe = field<std::vector<float>>(j, "probe", file);
  if (j.contains("precision")) i.precision = field<std::string>(j, "precision", file);
  if (j.contains("hnsw")) {
    const json& h = j["hnsw"];
    i.settings.hnsw_m = h.value("M", i.settings.hnsw_m);
    i.settings.ef_construction = h.value("ef_construction", i.settings.ef_construction);
    i.settings.ef_search = h.value("ef_search", i.settings.ef_search);
  }
  if (j.contains("recall_at_10") && j["recall_at_10"].is_number()) i.recall_at_10 = j["recall_at_10"].get<double>();
  if (i.probe.size() != i.dim) fail(ErrorCode::Input, "{}: \"probe\" has {} values, \"dim\" says {}", file.string(), i.probe.size(), i.dim);
  return i;
}

}  // namespace

void write_index_dir(const fs::path& dir, const IndexDir& index) {
  io::write_directory_atomic(dir, [&](const fs::path& partial) {
    index.index.write(partial / "index.faiss");
    io::write_atomic(partial / "texts.jsonl", [&](std::ostream& out) {
      for (std::size_t i = 0; i < index.texts.size(); ++i) out << json{{"id", index.ids[i]}, {"text", index.texts[i]}}.dump() << '\n';
    });
    io::write_atomic(partial / "index.json", info_json(index.info).dump(2) + "\n");
  });
}

IndexDir read_index_dir(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail(ErrorCode::Input, "{}: not an index directory (rankemb index build makes one)", dir.string());
  IndexDir d;
  d.info = parse_info(dir / "index.json");
  d.index = VectorIndex::read(dir / "index.faiss", d.info.settings.ef_search);
  const fs::path texts = dir / "texts.jsonl";
  std::ifstream in(texts, std::ios::binary);
  if (!in) fail(ErrorCode::Input, "{}: cannot open file", texts.string());
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_number_integer() || !j.contains("text") ||
        !j["text"].is_string())
      fail(ErrorCode::Input, "{}:{}: expected {{\"id\": integer, \"text\": string}}", texts.string(), n);
    d.ids.push_back(j["id"].get<std::int64_t>());
    d.texts.push_back(j["text"].get<std::string>());
  }
  if (d.texts.size() != d.index.size() || d.info.count != d.index.size())
    fail(ErrorCode::Input, "{}: {} texts and \"count\" {} for an index of {} vectors", dir.string(), d.texts.size(), d.info.count,
         d.index.size());
  if (d.index.dim() != d.info.dim)
    fail(ErrorCode::Input, "{}: the index holds {}-wide vectors, index.json says {}", dir.string(), d.index.dim(), d.info.dim);
  return d;
}

void check_same_model(const IndexInfo& info, std::vector<float> probe, const std::string& model,
                      const std::string& precision) {
  const bool index_int8 = info.precision == "int8", run_int8 = precision == "int8";
  if (!info.precision.empty() && index_int8 != run_int8)
    fail(ErrorCode::Usage, "the index was built with the model in {} and this run is in {}: {} (or rebuild the index)",
         info.precision, precision, index_int8 ? "pass --int8 (float32 model)" : "run without --int8");
  if (probe.size() != info.probe.size())
    fail(ErrorCode::Usage, "{} makes {}-wide vectors; the index was built with {} ({}-wide)", model, probe.size(), info.model,
         info.probe.size());
  l2_normalize(probe);
  double dot = 0;
  for (std::size_t i = 0; i < probe.size(); ++i) dot += double(probe[i]) * info.probe[i];
  if (dot < 0.999)
    fail(ErrorCode::Usage, "{} is not the model the index was built with ({}): their embeddings of the probe sentence have cosine {:.4f}",
         model, info.model, dot);
}

}  // namespace rankemb::search
