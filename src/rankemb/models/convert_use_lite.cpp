// USE-Lite TF.js graph model -> safetensors directory. The graph is a frozen TF Hub module
// ("module_apply_default/Encoder_en/KonaTransformer/..."): every variable became a Const node whose
// value sits in the weight shards, listed by the weightsManifest in shard order. We map the float
// variables to canonical names (transposing TF's [in, out] kernels to [out, in]), read the
// structural constants (head count, layer-norm epsilon, clip length, attention scale) to fill
// config.json, and refuse anything we do not recognise, so a different graph fails loudly here
// instead of giving wrong vectors later.
#include "rankemb/models/convert_use_lite.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/io/safetensors.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "shards and safetensors are little-endian");

// One weightsManifest entry with its bytes.
struct GraphTensor {
  std::string name;   // full TF name
  std::string where;  // "model.json: weightsManifest[g].weights[i] (\"name\")" for messages
  std::vector<std::int64_t> shape;
  bool is_int32 = false;
  std::span<const std::byte> bytes;

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  std::vector<float> floats() const {
    std::vector<float> v(static_cast<std::size_t>(numel()));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
  }
  float scalar_float() const {
    RANKEMB_CHECK(!is_int32 && numel() == 1, ErrorCode::ModelFormat, "{}: expected a float32 scalar", where);
    return floats()[0];
  }
  std::int32_t scalar_int() const {
    RANKEMB_CHECK(is_int32 && numel() == 1, ErrorCode::ModelFormat, "{}: expected an int32 scalar", where);
    std::int32_t v;
    std::memcpy(&v, bytes.data(), 4);
    return v;
  }
};

struct Graph {
  std::set<std::string> node_names;
  std::map<std::string, int> op_counts;
  std::vector<GraphTensor> tensors;  // manifest order
  std::vector<std::string> shard_data;  // owns the bytes the tensors point into
};

std::string json_where(const std::string& file, const std::string& field) { return fmt::format("{}: {}", file, field); }

// A missing package file is a broken model, not bad user input.
void require_file(const fs::path& path, const std::string& note = "") {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail(ErrorCode::ModelFormat, "{}: missing{}", path.string(), note);
}

// modelTopology.node: the op names and counts the converter checks the graph against.
void read_topology(const json& model, const std::string& file, Graph& g) {
  auto topo = model.find("modelTopology");
  if (topo == model.end() || !topo->is_object() || !topo->contains("node") || !(*topo)["node"].is_array()) {
    fail(ErrorCode::ModelFormat, "{}: modelTopology.node: missing or not an array (not a TF.js graph model)", file);
  }
  const json& nodes = (*topo)["node"];
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const json& n = nodes[i];
    if (!n.is_object() || !n.contains("name") || !n["name"].is_string() || !n.contains("op") || !n["op"].is_string()) {
      fail(ErrorCode::ModelFormat, "{}: modelTopology.node[{}]: expected an object with string \"name\" and \"op\"", file, i);
    }
    g.node_names.insert(n["name"].get<std::string>());
    ++g.op_counts[n["op"].get<std::string>()];
  }
}

// One weightsManifest[gi].weights[wi] entry: name, dtype and shape checked; its bytes start at
// `offset` of the group's data.
GraphTensor read_weight_entry(const json& w, const std::string& file, const std::string& field, const std::string& data,
                              std::size_t offset) {
  if (!w.is_object() || !w.contains("name") || !w["name"].is_string()) {
    fail(ErrorCode::ModelFormat, "{}: expected an object with a string \"name\"", json_where(file, field));
  }
  GraphTensor t;
  t.name = w["name"].get<std::string>();
  t.where = fmt::format("{}: {} ({:?})", file, field, t.name);
  if (w.contains("quantization")) {
    fail(ErrorCode::ModelFormat, "{}: quantized weights ({}) are not supported; convert an unquantized model",
         t.where, w["quantization"].dump());
  }
  if (!w.contains("dtype") || !w["dtype"].is_string()) fail(ErrorCode::ModelFormat, "{}: dtype: missing or not a string", t.where);
  const std::string dtype = w["dtype"].get<std::string>();
  if (dtype != "float32" && dtype != "int32") {
    fail(ErrorCode::ModelFormat, "{}: dtype {:?} is not supported (float32, int32)", t.where, dtype);
  }
  t.is_int32 = dtype == "int32";
  if (!w.contains("shape") || !w["shape"].is_array()) fail(ErrorCode::ModelFormat, "{}: shape: missing or not an array", t.where);
  for (const json& d : w["shape"]) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0 || d.get<std::int64_t>() > (std::int64_t{1} << 32)) {
      fail(ErrorCode::ModelFormat, "{}: shape {} has an invalid dimension", t.where, w["shape"].dump());
    }
    t.shape.push_back(d.get<std::int64_t>());
  }
  const std::size_t size = 4 * static_cast<std::size_t>(t.numel());
  if (size > data.size() - offset) {
    fail(ErrorCode::ModelFormat, "{}: needs bytes [{}, {}) but the group's shards hold only {} bytes", t.where, offset,
         offset + size, data.size());
  }
  t.bytes = {reinterpret_cast<const std::byte*>(data.data()) + offset, size};  // re-pointed by read_group
  return t;
}

// The shard files of one manifest group, concatenated: a group's shards are one byte stream cut
// into files, and its weights follow each other in it.
std::string read_group_shards(const json& group, const fs::path& dir, const std::string& gwhere) {
  std::string data;
  for (std::size_t pi = 0; pi < group["paths"].size(); ++pi) {
    const json& p = group["paths"][pi];
    if (!p.is_string()) fail(ErrorCode::ModelFormat, "{}.paths[{}]: expected a string", gwhere, pi);
    fs::path rel(p.get<std::string>());
    if (rel.empty() || rel.is_absolute() || rel.filename() != rel) {
      fail(ErrorCode::ModelFormat, "{}.paths[{}]: {:?} is not a file name next to model.json", gwhere, pi, p.get<std::string>());
    }
    require_file(dir / rel, fmt::format(" (listed in {}.paths[{}])", gwhere, pi));
    data += io::read_file(dir / rel);
  }
  return data;
}

void read_group(const json& group, std::size_t gi, const fs::path& dir, const std::string& file, Graph& g) {
  const std::string gwhere = json_where(file, fmt::format("weightsManifest[{}]", gi));
  if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() || !group.contains("weights") ||
      !group["weights"].is_array()) {
    fail(ErrorCode::ModelFormat, "{}: expected an object with \"paths\" and \"weights\" arrays", gwhere);
  }
  std::string data = read_group_shards(group, dir, gwhere);
  std::size_t offset = 0;
  std::vector<GraphTensor> group_tensors;
  for (std::size_t wi = 0; wi < group["weights"].size(); ++wi) {
    GraphTensor t = read_weight_entry(group["weights"][wi], file, fmt::format("weightsManifest[{}].weights[{}]", gi, wi),
                                      data, offset);
    offset += t.bytes.size();
    group_tensors.push_back(std::move(t));
  }
  if (offset != data.size()) {
    fail(ErrorCode::ModelFormat, "{}: the weights take {} bytes but the shards hold {}", gwhere, offset, data.size());
  }
  g.shard_data.push_back(std::move(data));
  const auto* base = reinterpret_cast<const std::byte*>(g.shard_data.back().data());
  std::size_t pos = 0;
  for (auto& t : group_tensors) {
    t.bytes = {base + pos, t.bytes.size()};
    pos += t.bytes.size();
    g.tensors.push_back(std::move(t));
  }
}

Graph read_graph(const fs::path& dir) {
  const fs::path model_path = dir / "model.json";
  const std::string file = model_path.string();
  require_file(model_path);
  json model = io::read_json(model_path);
  if (!model.is_object()) fail(ErrorCode::ModelFormat, "{}: expected a JSON object, got {}", file, model.type_name());
  if (auto f = model.find("format"); f != model.end() && !(f->is_string() && *f == "graph-model")) {
    fail(ErrorCode::ModelFormat, "{}: format is {}, expected \"graph-model\" (a TF.js graph model)", file, f->dump());
  }
  Graph g;
  read_topology(model, file, g);
  auto manifest = model.find("weightsManifest");
  if (manifest == model.end() || !manifest->is_array() || manifest->empty()) {
    fail(ErrorCode::ModelFormat, "{}: weightsManifest: missing, empty or not an array", file);
  }
  g.shard_data.reserve(manifest->size());  // tensors point into these strings: no reallocation
  for (std::size_t gi = 0; gi < manifest->size(); ++gi) read_group((*manifest)[gi], gi, dir, file, g);
  return g;
}

// The part after the TF Hub module scopes, e.g. "Encode/Layer_0/TransformerLayer/dense/bias/...".
std::string short_name(const std::string& name) {
  for (std::string_view p : {"module_apply_default/Encoder_en/KonaTransformer/", "module/Encoder_en/KonaTransformer/",
                             "module_apply_default/Encoder_en/", "module/Encoder_en/", "module_apply_default/", "module/"}) {
    if (name.starts_with(p)) return name.substr(p.size());
  }
  return name;
}

// A float variable mapped to its canonical name, with TF kernels ([in, out], or [1, 1, in, out]
// for the 1x1 convolutions) transposed to [out, in].
struct OutTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
  std::string where;
};

OutTensor as_is(const GraphTensor& t) { return {t.shape, t.floats(), t.where}; }

OutTensor as_vector(const GraphTensor& t) { return {{t.numel()}, t.floats(), t.where}; }

OutTensor transposed_kernel(const GraphTensor& t) {
  std::vector<std::int64_t> s = t.shape;
  if (s.size() == 4 && s[0] == 1 && s[1] == 1) s = {s[2], s[3]};
  if (s.size() != 2) fail(ErrorCode::ModelFormat, "{}: shape has {} dims, expected a [in, out] kernel", t.where, t.shape.size());
  const std::int64_t in = s[0], out = s[1];
  std::vector<float> src = t.floats(), dst(src.size());
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t o = 0; o < out; ++o) dst[o * in + i] = src[i * out + o];
  return {{out, in}, std::move(dst), t.where};
}

struct Extracted {
  std::map<std::string, OutTensor> tensors;  // canonical name -> data
  std::optional<std::int32_t> n_heads, max_length;
  std::optional<float> layer_norm_eps, l2_eps;
  std::map<int, float> attention_scale;  // per layer
};

Extracted extract(const Graph& g) {
  static const std::regex kNorm(R"(^Encode/Layer_(\d+)/TransformerLayer/(FFN/)?layer_prepostprocess/layer_norm/layer_norm_(scale|bias)/ConcatPartitions/concat$)");
  static const std::regex kAttnKernel(R"(^Encode/Layer_(\d+)/TransformerLayer/MultiheadAttention/(qkv|output)_transform_single/kernel/part_0$)");
  static const std::regex kAttnBias(R"(^Encode/Layer_(\d+)/TransformerLayer/MultiheadAttention/(qkv|output)_transform_single/bias/ConcatPartitions/concat$)");
  static const std::regex kDense(R"(^Encode/Layer_(\d+)/TransformerLayer/dense/(kernel|bias)/ConcatPartitions/concat$)");
  static const std::regex kFfnKernel(R"(^Encode/TransformerStack/Layer_(\d+)/TransformerLayer/FFN/(conv1|conv2)/Tensordot/Reshape_1$)");
  static const std::regex kFfnBias(R"(^Encode/Layer_(\d+)/TransformerLayer/FFN/(conv1|conv2)/bias/ConcatPartitions/concat$)");
  static const std::regex kTanh(R"(^hidden_layers/tanh_layer_(\d+)/(weights|bias)$)");
  static const std::regex kScale(R"(^Encode/TransformerStack/Layer_(\d+)/TransformerLayer/MultiheadAttention/mul/y$)");
  static const std::regex kHeads(R"(^Encode/TransformerStack/Layer_\d+/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/2$)");
  static const std::regex kEps(R"(^Encode/TransformerStack/Layer_\d+/TransformerLayer/(FFN/)?layer_prepostprocess/layer_norm/Cast/x$)");
  static const std::regex kMaskValue(R"(^Encode/TransformerStack/Layer_\d+/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y$)");

  Extracted x;
  auto put = [&](const std::string& name, OutTensor t) {
    const std::string where = t.where;
    if (!x.tensors.emplace(name, std::move(t)).second) fail(ErrorCode::ModelFormat, "{}: a second tensor maps to {:?}", where, name);
  };
  auto same_or_set = [](auto& slot, auto value, const GraphTensor& t) {
    if (slot && *slot != value) fail(ErrorCode::ModelFormat, "{}: value {} differs from an earlier {}", t.where, value, *slot);
    slot = value;
  };
  for (const GraphTensor& t : g.tensors) {
    const std::string s = short_name(t.name);
    std::smatch m;
    if (t.is_int32) {
      // Shape bookkeeping of the graph; only two of these carry model facts.
      if (std::regex_match(s, kHeads)) same_or_set(x.n_heads, t.scalar_int(), t);
      else if (s == "ClipToMaxLength/Less/y") same_or_set(x.max_length, t.scalar_int(), t);
      continue;
    }
    if (s == "Embeddings_en") {
      put("embeddings.weight", as_is(t));
    } else if (s == "Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1") {
      // The graph's own float32 inverse timescales: kept rather than recomputed, since exp() in
      // another library rounds a few of them differently.
      put("timing_signal.inv_timescales", as_vector(t));
    } else if (std::regex_match(s, m, kNorm)) {
      put(fmt::format("layers.{}.{}.{}", m[1].str(), m[2].matched ? "ffn_norm" : "attention_norm", m[3] == "scale" ? "weight" : "bias"), as_is(t));
    } else if (std::regex_match(s, m, kAttnKernel)) {
      put(fmt::format("layers.{}.attention.{}.weight", m[1].str(), m[2].str()), transposed_kernel(t));
    } else if (std::regex_match(s, m, kAttnBias)) {
      put(fmt::format("layers.{}.attention.{}.bias", m[1].str(), m[2].str()), as_is(t));
    } else if (std::regex_match(s, m, kDense)) {
      // AdjustResidualInput: projects the residual when a layer widens the stream (256 -> 512).
      put(fmt::format("layers.{}.residual_proj.{}", m[1].str(), m[2] == "kernel" ? "weight" : "bias"),
          m[2] == "kernel" ? transposed_kernel(t) : as_is(t));
    } else if (std::regex_match(s, m, kFfnKernel)) {
      put(fmt::format("layers.{}.ffn.{}.weight", m[1].str(), m[2].str()), transposed_kernel(t));
    } else if (std::regex_match(s, m, kFfnBias)) {
      put(fmt::format("layers.{}.ffn.{}.bias", m[1].str(), m[2].str()), as_is(t));
    } else if (std::regex_match(s, m, kTanh)) {
      if (m[1] != "0") fail(ErrorCode::ModelFormat, "{}: only one tanh layer (tanh_layer_0) is supported", t.where);
      put(fmt::format("tanh_layer.{}", m[2] == "weights" ? "weight" : "bias"), m[2] == "weights" ? transposed_kernel(t) : as_is(t));
    } else if (std::regex_match(s, m, kScale)) {
      x.attention_scale[std::stoi(m[1].str())] = t.scalar_float();
    } else if (std::regex_match(s, kEps)) {
      same_or_set(x.layer_norm_eps, t.scalar_float(), t);
    } else if (s == "hidden_layers/l2_normalize/Maximum/y") {
      same_or_set(x.l2_eps, t.scalar_float(), t);
    } else if (std::regex_match(s, kMaskValue)) {
      // -1e9 added to padded keys' logits: exp() of it is exactly 0, as masking out gives.
      if (t.scalar_float() > -1e4f) fail(ErrorCode::ModelFormat, "{}: padding bias {} is too small to mask", t.where, t.scalar_float());
    } else {
      fail(ErrorCode::ModelFormat, "{}: unrecognised float32 tensor (shape [{}]); this graph is not the USE-Lite encoder the converter knows",
           t.where, fmt::join(t.shape, ", "));
    }
  }
  return x;
}

const OutTensor& need(const Extracted& x, const std::string& name, const std::vector<std::int64_t>& shape, const std::string& file) {
  auto it = x.tensors.find(name);
  if (it == x.tensors.end()) fail(ErrorCode::ModelFormat, "{}: no weight maps to {:?} (missing from weightsManifest)", file, name);
  if (it->second.shape != shape) {
    fail(ErrorCode::ModelFormat, "{}: shape [{}] for {:?}, expected [{}]", it->second.where, fmt::join(it->second.shape, ", "), name,
         fmt::join(shape, ", "));
  }
  return it->second;
}

// Checks every tensor against the dimensions the embedding, first layer and tanh layer imply and
// returns config.json.
// The widths make_config reads off the extracted tensors and constants.
struct UseLiteWidths {
  std::int64_t vocab = 0, embed = 0, hidden = 0, inter = 0, heads = 0, n_layers = 0, out_dim = 0;
};

UseLiteWidths read_widths(const Extracted& x, const std::string& file) {
  UseLiteWidths w;
  auto emb = x.tensors.find("embeddings.weight");
  if (emb == x.tensors.end() || emb->second.shape.size() != 2) fail(ErrorCode::ModelFormat, "{}: no [vocab, dim] weight module/Embeddings_en", file);
  w.vocab = emb->second.shape[0];
  w.embed = emb->second.shape[1];
  auto out0 = x.tensors.find("layers.0.attention.output.weight");
  if (out0 == x.tensors.end()) fail(ErrorCode::ModelFormat, "{}: no Layer_0 output_transform_single kernel", file);
  w.hidden = out0->second.shape[0];
  auto conv1 = x.tensors.find("layers.0.ffn.conv1.weight");
  if (conv1 == x.tensors.end()) fail(ErrorCode::ModelFormat, "{}: no Layer_0 FFN conv1 kernel", file);
  w.inter = conv1->second.shape[0];
  if (!x.n_heads || *x.n_heads <= 0) fail(ErrorCode::ModelFormat, "{}: no positive split_heads head count constant", file);
  if (!x.max_length || *x.max_length <= 0) fail(ErrorCode::ModelFormat, "{}: no positive ClipToMaxLength/Less/y constant", file);
  if (!x.layer_norm_eps) fail(ErrorCode::ModelFormat, "{}: no layer_norm/Cast/x (epsilon) constant", file);
  if (!x.l2_eps || *x.l2_eps != 1e-12f) fail(ErrorCode::ModelFormat, "{}: l2_normalize/Maximum/y is not 1e-12", file);
  w.heads = *x.n_heads;
  if (w.embed % 2 != 0 || w.embed % w.heads != 0 || w.hidden % w.heads != 0) {
    fail(ErrorCode::ModelFormat, "{}: widths {} and {} do not split into {} heads", file, w.embed, w.hidden, w.heads);
  }
  while (x.tensors.contains(fmt::format("layers.{}.attention.qkv.weight", w.n_layers))) ++w.n_layers;
  auto tanh = x.tensors.find("tanh_layer.weight");
  if (tanh == x.tensors.end()) fail(ErrorCode::ModelFormat, "{}: no hidden_layers/tanh_layer_0/weights", file);
  w.out_dim = tanh->second.shape[0];
  return w;
}

// Every tensor of layer l with the shape use_lite.cpp expects, and the attention scale constant.
void check_layer(const Extracted& x, const UseLiteWidths& w, std::int64_t l, const std::string& file) {
  const std::int64_t in = l == 0 ? w.embed : w.hidden, hidden = w.hidden, inter = w.inter;
  auto p = [l](std::string_view rest) { return fmt::format("layers.{}.{}", l, rest); };
  need(x, p("attention_norm.weight"), {in}, file);
  need(x, p("attention_norm.bias"), {in}, file);
  need(x, p("attention.qkv.weight"), {3 * in, in}, file);
  need(x, p("attention.qkv.bias"), {3 * in}, file);
  need(x, p("attention.output.weight"), {hidden, in}, file);
  need(x, p("attention.output.bias"), {hidden}, file);
  if (in != hidden || x.tensors.contains(p("residual_proj.weight"))) {
    need(x, p("residual_proj.weight"), {hidden, in}, file);
    need(x, p("residual_proj.bias"), {hidden}, file);
  }
  need(x, p("ffn_norm.weight"), {hidden}, file);
  need(x, p("ffn_norm.bias"), {hidden}, file);
  need(x, p("ffn.conv1.weight"), {inter, hidden}, file);
  need(x, p("ffn.conv1.bias"), {inter}, file);
  need(x, p("ffn.conv2.weight"), {hidden, inter}, file);
  need(x, p("ffn.conv2.bias"), {hidden}, file);
  // Our model scales queries by 1/sqrt(head_dim); the graph's constant must be that value.
  auto sc = x.attention_scale.find(static_cast<int>(l));
  const float want = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in / w.heads)));
  if (sc == x.attention_scale.end() || std::abs(sc->second - want) > 1e-7f * want) {
    fail(ErrorCode::ModelFormat, "{}: Layer_{} attention scale is {}, expected 1/sqrt({}) = {}", file, l,
         sc == x.attention_scale.end() ? std::string("missing") : fmt::format("{}", sc->second), in / w.heads, want);
  }
}

// No tensor left over (a layer after a missing one, an unknown weight).
void check_tensor_count(const Extracted& x, std::int64_t n_layers, const std::string& file) {
  std::size_t expected = 4 + 12 * static_cast<std::size_t>(n_layers);
  for (std::int64_t l = 0; l < n_layers; ++l) expected += x.tensors.contains(fmt::format("layers.{}.residual_proj.weight", l)) ? 2 : 0;
  if (x.tensors.size() == expected) return;
  for (const auto& [name, t] : x.tensors) {
    if (name.starts_with("layers.") && std::stoll(name.substr(7)) >= n_layers) {
      fail(ErrorCode::ModelFormat, "{}: {:?} belongs to a layer after a missing one (layers 0..{} are complete)", t.where, name, n_layers - 1);
    }
  }
  fail(ErrorCode::ModelFormat, "{}: {} tensors recognised, expected {}", file, x.tensors.size(), expected);
}

// The semantics use_lite.cpp implements; a graph without these nodes is built differently.
void check_graph_semantics(const Graph& g, std::int64_t n_layers, const std::string& file) {
  for (std::string_view node : {"indices", "values", "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/AddTimingSignal/add",
                                "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/add",
                                "module_apply_default/Encoder_en/hidden_layers/l2_normalize"}) {
    if (!g.node_names.contains(std::string(node))) fail(ErrorCode::ModelFormat, "{}: graph has no node {:?}", file, node);
  }
  for (std::string_view op : {"Softmax", "Relu"}) {
    auto it = g.op_counts.find(std::string(op));
    if (it == g.op_counts.end() || it->second != n_layers) {
      fail(ErrorCode::ModelFormat, "{}: graph has {} {} ops, expected one per layer ({})", file, it == g.op_counts.end() ? 0 : it->second, op, n_layers);
    }
  }
}

json make_config(const Graph& g, const Extracted& x, const std::string& file) {
  const UseLiteWidths w = read_widths(x, file);
  need(x, "timing_signal.inv_timescales", {w.embed / 2}, file);
  for (std::int64_t l = 0; l < w.n_layers; ++l) check_layer(x, w, l, file);
  need(x, "tanh_layer.weight", {w.out_dim, w.hidden}, file);
  need(x, "tanh_layer.bias", {w.out_dim}, file);
  check_tensor_count(x, w.n_layers, file);
  check_graph_semantics(g, w.n_layers, file);

  json c = json::object();
  c["model_type"] = "use-lite";
  c["architectures"] = json::array({"UseLiteEncoder"});
  c["vocab_size"] = w.vocab;
  c["embedding_size"] = w.embed;
  c["hidden_size"] = w.hidden;
  c["num_hidden_layers"] = w.n_layers;
  c["num_attention_heads"] = w.heads;
  c["intermediate_size"] = w.inter;
  c["output_dim"] = w.out_dim;
  c["max_position_embeddings"] = *x.max_length;
  c["hidden_act"] = "relu";
  // Shortest decimal that reads back as the graph's float32 (1e-06 rather than 9.99999997e-07).
  c["layer_norm_eps"] = std::stod(fmt::format("{}", *x.layer_norm_eps));
  c["torch_dtype"] = "float32";
  return c;
}

bool is_previous_conversion(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / "config.json", ec)) return false;
  try {
    json c = io::read_json(dir / "config.json");
    return c.is_object() && c.value("model_type", "") == "use-lite";
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

UseLiteConversion convert_use_lite(const fs::path& input_dir, const fs::path& output_dir) {
  std::error_code ec;
  if (!fs::is_directory(input_dir, ec)) fail(ErrorCode::ModelFormat, "{}: not a directory (expected the package's dist/ folder)", input_dir.string());
  const std::string model_file = (input_dir / "model.json").string();
  Graph g = read_graph(input_dir);
  Extracted x = extract(g);
  json config = make_config(g, x, model_file);

  // The tokenizer file must at least be a vocabulary the embedding table covers.
  const fs::path vocab_path = input_dir / "vocab.json";
  require_file(vocab_path);
  json vocab = io::read_json(vocab_path);
  if (!vocab.is_array() || vocab.empty()) fail(ErrorCode::ModelFormat, "{}: expected a non-empty array of [piece, score] pairs", vocab_path.string());
  if (static_cast<std::int64_t>(vocab.size()) > config["vocab_size"].get<std::int64_t>()) {
    fail(ErrorCode::ModelFormat, "{}: {} pieces but the embedding table has only {} rows", vocab_path.string(), vocab.size(),
         config["vocab_size"].get<std::int64_t>());
  }

  if (fs::exists(output_dir, ec) && !(fs::is_directory(output_dir, ec) && (fs::is_empty(output_dir, ec) || is_previous_conversion(output_dir)))) {
    fail(ErrorCode::Usage, "{}: exists and is not an earlier use-lite conversion; remove it or choose another output", output_dir.string());
  }
  UseLiteConversion result;
  io::write_directory_atomic(output_dir, [&](const fs::path& partial) {
    std::vector<io::TensorToWrite> out;
    for (const auto& [name, t] : x.tensors) {
      out.push_back({name, io::TensorDtype::F32, t.shape, std::as_bytes(std::span(t.data))});
      result.n_params += static_cast<std::int64_t>(t.data.size());
    }
    result.n_tensors = static_cast<std::int64_t>(out.size());
    result.n_layers = config["num_hidden_layers"].get<std::int64_t>();
    io::write_safetensors(partial / "model.safetensors", out, {{"format", "pt"}});
    io::write_atomic(partial / "config.json", config.dump(2) + "\n");
    io::write_atomic(partial / "vocab.json", io::read_file(vocab_path));
  });
  return result;
}

}  // namespace rankemb::models
