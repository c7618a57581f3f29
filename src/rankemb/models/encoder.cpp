#include "rankemb/models/encoder.h"

#include <algorithm>
#include <array>
#include <numeric>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/models/device.h"
#include "rankemb/models/kernels/int8_linear.h"
#include "rankemb/models/kernels/switch.h"
#include "rankemb/models/safetensors_torch.h"
#include "rankemb/models/registry.h"
#include "rankemb/models/weights.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace fs = std::filesystem;
using torch::Tensor;

namespace {

constexpr std::array<std::pair<Pooler, std::string_view>, 6> kPoolerNames = {{
    {Pooler::Cls, "cls"},
    {Pooler::ClsBeforePooler, "cls_before_pooler"},
    {Pooler::Avg, "avg"},
    {Pooler::AvgFirstLast, "avg_first_last"},
    {Pooler::AvgTop2, "avg_top2"},
    {Pooler::Max, "max"},
}};

// Mean over the tokens the mask keeps; `h` [B, T, H], mask [B, T].
Tensor masked_mean(const Tensor& h, const Tensor& attention_mask) {
  Tensor m = attention_mask.to(h.scalar_type()).unsqueeze(-1);
  // sentence-transformers clamps the count the same way, so all-pad rows give 0 rather than NaN.
  return (h * m).sum(1) / m.sum(1).clamp_min(1e-9);
}

Tensor to_pooling_dtype(const Tensor& t) {
  auto s = t.scalar_type();
  return (s == torch::kBFloat16 || s == torch::kHalf) ? t.to(torch::kFloat) : t;
}

// The tokenizer and sentence-transformers files save() copies when present.
constexpr std::array<std::string_view, 11> kCopiedFiles = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt",
    "added_tokens.json", "sentencepiece.bpe.model", "spiece.model", "sentence_bert_config.json",
    "config_sentence_transformers.json"};

// sentence-transformers' pooling_mode_* keys for the poolers it shares with us. Its "cls token" is
// the [CLS] state itself: the Transformer module never applies BERT's pooler.
std::optional<Pooler> st_pooler(const nlohmann::json& cfg, const fs::path& file) {
  std::vector<std::string> on;
  for (const auto& [key, value] : cfg.items()) {
    if (key.starts_with("pooling_mode_") && value.is_boolean() && value.get<bool>()) on.push_back(key);
  }
  if (on.size() != 1) {
    fail(ErrorCode::ModelFormat, "{}: expected exactly one pooling_mode_* set to true, got {} ({})", file.string(),
         on.size(), fmt::join(on, ", "));
  }
  if (on[0] == "pooling_mode_mean_tokens") return Pooler::Avg;
  if (on[0] == "pooling_mode_cls_token") return Pooler::ClsBeforePooler;
  if (on[0] == "pooling_mode_max_tokens") return Pooler::Max;
  fail(ErrorCode::ModelFormat, "{}: {} is not supported (mean, cls, max)", file.string(), on[0]);
}

const char* st_pooling_key(Pooler p) {
  switch (p) {
    case Pooler::Avg: return "pooling_mode_mean_tokens";
    case Pooler::ClsBeforePooler: return "pooling_mode_cls_token";
    case Pooler::Max: return "pooling_mode_max_tokens";
    default: return nullptr;
  }
}

// 1_Pooling/config.json for a pooler st_pooling_key() can express.
nlohmann::json st_pooling_config(std::int64_t dim, Pooler p) {
  nlohmann::json pooling = {{"word_embedding_dimension", dim},
                            {"pooling_mode_cls_token", false},
                            {"pooling_mode_mean_tokens", false},
                            {"pooling_mode_max_tokens", false},
                            {"pooling_mode_mean_sqrt_len_tokens", false}};
  pooling[st_pooling_key(p)] = true;
  return pooling;
}

}  // namespace

std::string_view pooler_name(Pooler p) {
  for (const auto& [v, name] : kPoolerNames) {
    if (v == p) return name;
  }
  return "?";
}

Pooler parse_pooler(std::string_view name) {
  for (const auto& [v, n] : kPoolerNames) {
    if (n == name) return v;
  }
  std::vector<std::string_view> names;
  for (const auto& [v, n] : kPoolerNames) names.push_back(n);
  fail(ErrorCode::Usage, "unknown pooler \"{}\" (expected one of: {})", name, fmt::join(names, ", "));
}

bool EncoderNetwork::pooler_needs_hidden_states(Pooler pooler) const {
  return pooler == Pooler::AvgFirstLast || pooler == Pooler::AvgTop2;
}

Tensor EncoderNetwork::pool(const EncoderOutput& out, const Tensor& attention_mask, Pooler pooler) {
  const auto& hs = out.hidden_states;
  auto need_layers = [&](std::size_t n) {
    RANKEMB_CHECK(hs.size() >= n, ErrorCode::Other, "pooler {} needs {} hidden states, the network returned {}",
                  pooler_name(pooler), n, hs.size());
  };
  switch (pooler) {
    case Pooler::Cls:
      if (out.pooler_output.defined()) return to_pooling_dtype(out.pooler_output);
      [[fallthrough]];
    case Pooler::ClsBeforePooler: return to_pooling_dtype(out.last_hidden_state.select(1, 0));
    case Pooler::Avg: return masked_mean(to_pooling_dtype(out.last_hidden_state), attention_mask);
    case Pooler::AvgFirstLast:
      // SimCSE (simcse/models.py and evaluation.py) averages hidden_states[1], the first layer's
      // output, not hidden_states[0] (the embeddings), with the last layer.
      need_layers(2);
      return masked_mean((to_pooling_dtype(hs[1]) + to_pooling_dtype(hs.back())) / 2.0, attention_mask);
    case Pooler::AvgTop2:
      need_layers(3);
      return masked_mean((to_pooling_dtype(hs[hs.size() - 2]) + to_pooling_dtype(hs.back())) / 2.0, attention_mask);
    case Pooler::Max: {
      Tensor h = to_pooling_dtype(out.last_hidden_state);
      Tensor pad = attention_mask.eq(0).unsqueeze(-1);
      return h.masked_fill(pad, -1e9).amax(1);  // sentence-transformers' fill value for pads
    }
  }
  fail(ErrorCode::Other, "unhandled pooler");
}

// ---------------------------------------------------------------------------------------------

SentenceEncoder::SentenceEncoder(std::shared_ptr<text::Tokenizer> tokenizer, std::shared_ptr<EncoderNetwork> network,
                                 Pooler pooler, bool normalize, std::int64_t default_max_length, fs::path source_dir)
    : tokenizer_(std::move(tokenizer)), network_(std::move(network)), pooler_(pooler), normalize_(normalize),
      default_max_length_(default_max_length), source_dir_(std::move(source_dir)) {
  auto net_pad = network_->pad_token_id();
  auto tok_pad = tokenizer_->special_tokens().pad;
  pad_id_ = net_pad ? static_cast<text::TokenId>(*net_pad) : (tok_pad >= 0 ? tok_pad : 0);
}

Dtype SentenceEncoder::dtype() const {
  auto params = network_->parameters();
  return params.empty() ? Dtype::Float32 : compute_dtype(params.front().scalar_type());
}

namespace {

// Right-pads id rows into a batch.
TokenBatch pad_batch(const std::vector<const std::vector<text::TokenId>*>& rows, text::TokenId pad_id) {
  std::size_t longest = 0;
  for (const auto* r : rows) longest = std::max(longest, r->size());
  auto n = static_cast<std::int64_t>(rows.size());
  auto width = static_cast<std::int64_t>(longest);
  Tensor input_ids = torch::full({n, width}, static_cast<std::int64_t>(pad_id), torch::kLong);
  Tensor mask = torch::zeros({n, width}, torch::kLong);
  auto ia = input_ids.accessor<std::int64_t, 2>();
  auto ma = mask.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& row = *rows[static_cast<std::size_t>(i)];
    for (std::size_t j = 0; j < row.size(); ++j) {
      ia[i][static_cast<std::int64_t>(j)] = row[j];
      ma[i][static_cast<std::int64_t>(j)] = 1;
    }
  }
  return {input_ids, mask};
}

}  // namespace

TokenBatch SentenceEncoder::tokenize(const std::vector<std::string>& texts, std::int64_t max_length) const {
  if (max_length <= 0) max_length = default_max_length_;
  RANKEMB_CHECK(max_length <= network_->max_tokens(), ErrorCode::Usage,
                "max_length {} exceeds the model's {} positions", max_length, network_->max_tokens());
  text::EncodeOptions opts{.add_special_tokens = true, .max_length = static_cast<std::size_t>(max_length)};
  std::vector<std::vector<text::TokenId>> ids;
  ids.reserve(texts.size());
  for (const auto& t : texts) ids.push_back(tokenizer_->encode(t, opts));
  std::vector<const std::vector<text::TokenId>*> rows;
  for (const auto& r : ids) rows.push_back(&r);
  return pad_batch(rows, pad_id_);
}

Tensor SentenceEncoder::embed_batch(const TokenBatch& batch) {
  // Tokens are batched on the host; the network may live on a GPU (LoadOptions::device).
  const auto params = network_->parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  const Tensor ids = batch.input_ids.to(device), mask = batch.attention_mask.to(device);
  EncoderOutput out = network_->forward_unpadded(ids, mask, network_->pooler_needs_hidden_states(pooler_));
  Tensor v = network_->pool(out, mask, pooler_);
  if (normalize_) v = torch::nn::functional::normalize(v, torch::nn::functional::NormalizeFuncOptions().dim(1));
  return v;
}

Tensor SentenceEncoder::embed(const std::vector<std::string>& texts, std::int64_t max_length) {
  return embed_batch(tokenize(texts, max_length));
}

Tensor SentenceEncoder::encode(const std::vector<std::string>& texts, const EncodeOptions& options,
                               Progress& progress) {
  RANKEMB_CHECK(options.batch > 0, ErrorCode::Usage, "batch size must be positive, got {}", options.batch);
  if (options.dtype && *options.dtype != dtype()) {
    fail(ErrorCode::Usage, "encode in {} asked of a network loaded as {}; load it with LoadOptions::dtype",
         dtype_name(*options.dtype), dtype_name(dtype()));
  }
  std::int64_t max_length = options.max_length > 0 ? options.max_length : default_max_length_;
  auto n = static_cast<std::int64_t>(texts.size());
  Tensor result = torch::empty({n, dim()}, torch::kFloat);
  progress.start("encoding", static_cast<std::uint64_t>(n), "sentences");
  if (n == 0) {
    progress.finish();
    return result;
  }

  RANKEMB_CHECK(max_length <= network_->max_tokens(), ErrorCode::Usage,
                "max_length {} exceeds the model's {} positions", max_length, network_->max_tokens());
  std::vector<std::vector<text::TokenId>> ids(texts.size());
  text::EncodeOptions opts{.add_special_tokens = true, .max_length = static_cast<std::size_t>(max_length)};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    try {
      ids[i] = tokenizer_->encode(texts[i], opts);
    } catch (Error& e) {
      throw e.with_context(fmt::format("text {}", i + 1));
    }
  }
  // Longest first, so each batch holds texts of similar length and pads little.
  std::vector<std::int64_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return ids[a].size() > ids[b].size(); });

  // The mode is written only when it changes: concurrent calls on a model in eval mode (the
  // server's workers) then share it without writing to it.
  const bool was_training = network_->is_training();
  if (was_training) network_->eval();
  struct RestoreMode {
    EncoderNetwork& net;
    bool training;
    ~RestoreMode() {
      if (training) net.train(true);
    }
  } restore{*network_, was_training};
  torch::InferenceMode inference;

  for (std::int64_t start = 0; start < n; start += options.batch) {
    std::int64_t end = std::min(n, start + options.batch);
    std::vector<const std::vector<text::TokenId>*> rows;
    for (std::int64_t i = start; i < end; ++i) rows.push_back(&ids[static_cast<std::size_t>(order[i])]);
    Tensor v = embed_batch(pad_batch(rows, pad_id_)).to(torch::kCPU, torch::kFloat);
    if (options.normalize && !normalize_) {
      v = torch::nn::functional::normalize(v, torch::nn::functional::NormalizeFuncOptions().dim(1));
    }
    Tensor where = torch::from_blob(order.data() + start, {end - start}, torch::kLong);
    result.index_copy_(0, where, v);
    progress.advance(static_cast<std::uint64_t>(end - start));
  }
  progress.finish();
  return result;
}

void SentenceEncoder::save(const fs::path& dir) const {
  RANKEMB_CHECK(!source_dir_.empty(), ErrorCode::Other,
                "saving needs the directory the model was loaded from (for config.json and tokenizer files)");
  io::create_output_directory(dir);
  bool st = fs::exists(source_dir_ / "modules.json");
  if (st && !st_pooling_key(pooler_)) {
    fail(ErrorCode::Usage, "pooler {} cannot be written as a sentence-transformers Pooling module (avg, cls_before_pooler, max)",
         pooler_name(pooler_));
  }
  models::NamedTensors tensors;
  for (const auto& p : network_->named_parameters(true)) tensors.emplace(p.key(), p.value().detach());
  for (const auto& b : network_->named_buffers(true)) tensors.emplace(b.key(), b.value().detach());
  models::save_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});

  auto copy = [&](const fs::path& rel) {
    if (fs::exists(source_dir_ / rel) && fs::weakly_canonical(source_dir_) != fs::weakly_canonical(dir)) {
      io::write_atomic(dir / rel, io::read_file(source_dir_ / rel));
    }
  };
  copy("config.json");
  for (auto name : kCopiedFiles) copy(std::string(name));
  if (!st) {
    // A plain Hugging Face directory reloads with the network's default pooler, so a different
    // pooler that sentence-transformers can express (e.g. raw [CLS] after --mlp-only-train) is
    // written as a sentence-transformers layout around the same files; otherwise the saved model
    // would silently embed differently than the one in memory.
    if (pooler_ == network_->default_pooler() || !st_pooling_key(pooler_)) return;
    const nlohmann::json pooling = st_pooling_config(dim(), pooler_);
    nlohmann::json modules = nlohmann::json::array();
    modules.push_back({{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}});
    modules.push_back({{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}});
    if (normalize_) {
      modules.push_back({{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}});
      fs::create_directories(dir / "2_Normalize");
    }
    fs::create_directories(dir / "1_Pooling");
    io::write_atomic(dir / "1_Pooling" / "config.json", pooling.dump(2));
    io::write_atomic(dir / "sentence_bert_config.json",
                     nlohmann::json{{"max_seq_length", default_max_length_}, {"do_lower_case", false}}.dump(2));
    io::write_atomic(dir / "modules.json", modules.dump(2));
    return;
  }

  // sentence-transformers layout: the modules the source listed, with our pooler and normalization.
  nlohmann::json modules = io::read_json(source_dir_ / "modules.json");
  const nlohmann::json pooling = st_pooling_config(dim(), pooler_);
  nlohmann::json out_modules = nlohmann::json::array();
  for (const auto& m : modules) {
    std::string type = m.value("type", "");
    if (type.ends_with(".Normalize") && !normalize_) continue;
    out_modules.push_back(m);
    if (type.ends_with(".Pooling")) {
      fs::create_directories(dir / m.value("path", "1_Pooling"));
      io::write_atomic(dir / m.value("path", "1_Pooling") / "config.json", pooling.dump(2));
    } else if (type.ends_with(".Normalize")) {
      fs::create_directories(dir / m.value("path", "2_Normalize"));
    }
  }
  io::write_atomic(dir / "modules.json", out_modules.dump(2));
}

// ---------------------------------------------------------------------------------------------

namespace {

struct StLayout {
  fs::path transformer_dir;  // where config.json and the weights live
  std::optional<Pooler> pooler;
  bool normalize = false;
  std::optional<std::int64_t> max_seq_length;
};

StLayout read_st_layout(const fs::path& dir) {
  StLayout out;
  out.transformer_dir = dir;
  fs::path modules_file = dir / "modules.json";
  if (!fs::exists(modules_file)) return out;
  nlohmann::json modules = io::read_json(modules_file);
  RANKEMB_CHECK(modules.is_array(), ErrorCode::ModelFormat, "{}: expected a JSON array", modules_file.string());
  for (const auto& m : modules) {
    RANKEMB_CHECK(m.is_object() && m.contains("type") && m["type"].is_string(), ErrorCode::ModelFormat,
                  "{}: every module needs a string \"type\"", modules_file.string());
    std::string type = m["type"].get<std::string>();
    std::string path = m.value("path", "");
    if (type.ends_with(".Transformer")) {
      out.transformer_dir = dir / path;
    } else if (type.ends_with(".Pooling")) {
      fs::path cfg = dir / path / "config.json";
      out.pooler = st_pooler(io::read_json(cfg), cfg);
    } else if (type.ends_with(".Normalize")) {
      out.normalize = true;
    } else {
      fail(ErrorCode::ModelFormat, "{}: module type \"{}\" is not supported (Transformer, Pooling, Normalize)",
           modules_file.string(), type);
    }
  }
  for (const fs::path& p : {dir / "sentence_bert_config.json", out.transformer_dir / "sentence_bert_config.json"}) {
    if (!fs::exists(p)) continue;
    nlohmann::json cfg = io::read_json(p);
    if (cfg.contains("max_seq_length") && cfg["max_seq_length"].is_number_integer()) {
      out.max_seq_length = cfg["max_seq_length"].get<std::int64_t>();
    }
    break;
  }
  return out;
}

}  // namespace

std::vector<fs::path> model_input_files(const fs::path& dir) {
  static const char* const kNames[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                                       "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                       "vocab.txt", "vocab.json", "merges.txt", "modules.json",
                                       "sentence_bert_config.json", "config_sentence_transformers.json",
                                       "1_Pooling/config.json"};
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) return {dir};
  for (const char* name : kNames)
    if (fs::exists(dir / name, ec)) files.push_back(dir / name);
  return files;
}

namespace {

void enable_int8_inference(EncoderNetwork& net, const LoadOptions& options) {
  RANKEMB_CHECK(options.dtype == Dtype::Float32 && !options.device.is_cuda(), ErrorCode::Usage,
                "--int8 quantizes a float32 model on the CPU (asked: {} on {})", dtype_name(options.dtype),
                device_name(options.device));
  RANKEMB_CHECK(net.has_packed_path(), ErrorCode::Usage,
                "--int8 is for the BERT family and MPNet; this architecture has no int8 path");
  RANKEMB_CHECK(kernels::enabled(), ErrorCode::Usage, "--int8 runs on rankemb's kernels, which RANKEMB_KERNELS=off turns off");
  RANKEMB_CHECK(kernels::int8_available(), ErrorCode::Usage,
                "--int8 needs oneDNN (Debian libdnnl-dev), which this build was configured without");
  net.set_int8_inference(true);
}

}  // namespace

std::unique_ptr<SentenceEncoder> load_encoder(const fs::path& dir, const LoadOptions& options) {
  try {
    RANKEMB_CHECK(fs::is_directory(dir), ErrorCode::ModelFormat, "not a model directory (missing or not a directory)");
    StLayout st = read_st_layout(dir);
    HfConfig config = load_hf_config(st.transformer_dir / "config.json");
    const ArchSpec* spec = arch_registry().find(config.model_type);
    if (!spec || spec->kind != ModelKind::Encoder || !spec->build_encoder) {
      const std::vector<std::string_view> names = model_types(ModelKind::Encoder);
      fail(ErrorCode::ModelFormat, "model_type \"{}\" is not a sentence encoder rankemb supports ({})",
           config.model_type, fmt::join(names, ", "));
    }
    WeightStore weights = WeightStore::load(st.transformer_dir);
    std::shared_ptr<EncoderNetwork> net = spec->build_encoder(config, weights);
    weights.finish();
    net->to(torch_device(options.device), scalar_type(options.dtype));
    net->eval();
    if (options.int8) enable_int8_inference(*net, options);
    std::shared_ptr<text::Tokenizer> tok = text::load_tokenizer(st.transformer_dir);
    std::int64_t max_length = std::min(st.max_seq_length.value_or(net->max_tokens()), net->max_tokens());
    Pooler pooler = options.pooler.value_or(st.pooler.value_or(net->default_pooler()));
    return std::make_unique<SentenceEncoder>(std::move(tok), std::move(net), pooler, st.normalize, max_length, dir);
  } catch (Error& e) {
    throw e.with_context("loading model " + dir.string());
  }
}

}  // namespace rankemb::models
