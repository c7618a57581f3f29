#include "rankemb/llm/llm_generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <utility>

#include <torch/torch.h>
#include <fmt/ranges.h>

#include "rankemb/models/causal_lm.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::llm {

using namespace generate;

namespace {

// The user message of the authors' generation/generation.py (hly1998/RankingSentenceGeneration,
// commit 3fa466a), the f-string passed as "content" to apply_chat_template: it starts after a
// line continuation, so each of its three lines carries the source file's 28 spaces of
// indentation, the first line ends with a space and the prompt ends with "Result: ". The Llama-3
// template trims the content (as it did for the authors); ChatML keeps it verbatim.
constexpr std::string_view kPaperPrompt =
    "                            Rewrite the following sentence or phrase using different words and sentence "
    "structure while preserving its original meaning. \n"
    "                            Directly answer with the rewritten sentence. Don't give any explanation or "
    "description other than the rewritten sentence.\n"
    "                            Write a sentence that is entailment with: ```{sentence}```. Result: ";

constexpr std::string_view kPlaceholder = "{sentence}";

// The copy negative (LlmGeneratorOptions::negative): what a small model does when it fails the
// paper's instruction. Guidance away from it pushes the output off the verbatim copy.
constexpr std::string_view kCopyPrompt =
    "Repeat the following sentence exactly, word for word, without changing anything. "
    "Directly answer with the sentence.\n"
    "Sentence: ```{sentence}```. Result: ";

// SmallModelRecipe's prompt: the paper's instruction is ~80 tokens of detail a 135M model echoes
// back ("The rewritten sentence is: ..."); this one it follows.
constexpr std::string_view kSmallModelPrompt =
    "Rewrite this sentence using some different words. Reply with the new sentence only.\nSentence: {sentence}";

enum class Negative { Previous, Copy, Auto };

Negative parse_negative(std::string_view name) {
  if (name == "previous") return Negative::Previous;
  if (name == "copy") return Negative::Copy;
  if (name == "auto") return Negative::Auto;
  fail(ErrorCode::Usage, "unknown negative {:?}; expected previous, copy or auto", name);
}


// float32 combination shared by guided_scores() and the generator, so the tests of the formula
// test what the generator computes.
void combine(const float* lpos, const float* lneg, float g, std::size_t n, float* out) {
  if (lneg == nullptr) {
    std::copy(lpos, lpos + n, out);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = lneg[i] + g * (lpos[i] - lneg[i]);
}

// One RNG per request, from (seed, chain_id, step) alone: independent of batch composition.
// A retry (attempt > 0) gets a stream of its own; attempt 0 keeps the stream of earlier versions.
std::mt19937_64 request_rng(std::uint64_t seed, std::uint64_t chain_id, int step, int attempt) {
  return std::mt19937_64(request_seed(seed, chain_id, step) ^ (static_cast<std::uint64_t>(attempt) * 0x9E3779B97F4A7C15ULL));
}

// Uniform in [0, 1) from 53 random bits (std::uniform_real_distribution is not specified exactly
// across standard libraries; this is).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Temperature + top-p (nucleus) sampling over the guided scores: the smallest set of tokens, most
// probable first (ties: lower id first), whose probability reaches top_p; at least one token.
std::int64_t sample_token(std::span<const float> scores, double temperature, double top_p, std::mt19937_64& rng) {
  const std::size_t n = scores.size();
  double max_score = -INFINITY;
  for (float s : scores) max_score = std::max(max_score, static_cast<double>(s));
  std::vector<double> p(n);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = std::exp((static_cast<double>(scores[i]) - max_score) / temperature);
    total += p[i];
  }
  std::vector<std::int64_t> order;
  double kept = total;
  if (top_p < 1.0) {
    order.resize(n);
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return p[a] > p[b]; });
    double cum = 0;
    std::size_t keep = 0;
    while (keep < n) {
      cum += p[order[keep]];
      ++keep;
      if (cum >= top_p * total) break;
    }
    order.resize(keep);
    kept = cum;
  }
  double u = uniform01(rng) * kept;
  if (order.empty()) {
    for (std::size_t i = 0; i < n; ++i) {
      if (u < p[i]) return static_cast<std::int64_t>(i);
      u -= p[i];
    }
    for (std::size_t i = n; i-- > 0;)  // rounding left u past the end: the last possible token
      if (p[i] > 0) return static_cast<std::int64_t>(i);
    return 0;
  }
  for (std::int64_t id : order) {
    if (u < p[id]) return id;
    u -= p[id];
  }
  return order.back();
}

void validate(const LlmGeneratorOptions& o) {
  RANKEMB_CHECK(o.batch >= 1 && o.batch <= kMaxBatch, ErrorCode::Usage, "batch must be in [1, {}], got {}", kMaxBatch,
                o.batch);
  RANKEMB_CHECK(o.max_new_tokens >= 1, ErrorCode::Usage, "max_new_tokens must be at least 1, got {}", o.max_new_tokens);
  RANKEMB_CHECK(std::isfinite(o.guidance), ErrorCode::Usage, "guidance must be a finite number, got {}", o.guidance);
  RANKEMB_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, ErrorCode::Usage,
                "temperature must be >= 0, got {}", o.temperature);
  RANKEMB_CHECK(o.top_p > 0 && o.top_p <= 1, ErrorCode::Usage, "top_p must be in (0, 1], got {}", o.top_p);
  RANKEMB_CHECK(std::isfinite(o.retry_temperature) && o.retry_temperature >= 0, ErrorCode::Usage,
                "retry temperature must be >= 0, got {}", o.retry_temperature);
  parse_negative(o.negative);
  if (!o.copy_prompt_template.empty())
    RANKEMB_CHECK(o.copy_prompt_template.find(kPlaceholder) != std::string::npos, ErrorCode::Usage,
                  "copy prompt template has no {} placeholder: '{}'", kPlaceholder, o.copy_prompt_template);
  if (!o.prompt_template.empty())
    RANKEMB_CHECK(o.prompt_template.find(kPlaceholder) != std::string::npos, ErrorCode::Usage,
                  "prompt template has no {} placeholder: '{}'", kPlaceholder, o.prompt_template);
  text::parse_chat_format(o.chat_template);
}

std::string dir_name(const std::filesystem::path& dir) {
  auto p = dir.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

class LlmGenerator final : public SentenceGenerator {
 public:
  LlmGenerator(std::shared_ptr<models::CausalLm> model, const LlmGeneratorOptions& options, std::string name)
      : model_(std::move(model)), options_(options), name_(std::move(name)) {
    validate(options_);
    RANKEMB_CHECK(model_ != nullptr, ErrorCode::Usage, "make_llm_generator: no model");
    tokenizer_ = model_->tokenizer();
    RANKEMB_CHECK(tokenizer_ != nullptr, ErrorCode::ModelFormat,
                  "{}: guided generation needs the model's tokenizer (tokenizer.json)", name_);
    if (options_.prompt_template.empty()) options_.prompt_template = std::string(kPaperPrompt);
    if (options_.copy_prompt_template.empty()) options_.copy_prompt_template = std::string(kCopyPrompt);
    negative_ = parse_negative(options_.negative);

    auto format = text::parse_chat_format(options_.chat_template);
    if (format) {
      format_ = *format;
    } else if (!options_.model_dir.empty()) {
      // auto: the model's own template, interpreted; a model without one gets the raw prompt.
      model_chat_ = text::load_model_chat_template(options_.model_dir);
    }
    if (format_ == text::ChatFormat::Llama3) {
      if (!options_.model_dir.empty()) {
        bos_ = text::chat_bos_token(options_.model_dir);
      } else if (tokenizer_->special_tokens().bos >= 0) {
        bos_ = tokenizer_->id_to_token(tokenizer_->special_tokens().bos);
      }
    }
    // Qwen3's template needs enable_thinking=false to answer directly; the empty think block it
    // then renders would be foreign text to ChatML models without think tokens (Qwen2.5).
    chat_options_.enable_thinking = !tokenizer_->token_to_id("<think>").has_value();

    for (std::int64_t id : model_->stop_token_ids()) stop_ids_.push_back(id);
    std::sort(stop_ids_.begin(), stop_ids_.end());
    vocab_ = model_->vocab_size();

    n_slots_ = 2 * options_.batch;
    for (std::size_t s = n_slots_; s-- > 0;) free_slots_.push_back(s);  // pop_back takes the lowest
    if (options_.share_prefix && model_->can_copy_prefix()) {
      // The prompt with an empty sentence: every real prompt starts with most of these tokens;
      // the longest common prefix decides how many a stream copies (so tokenization at the
      // boundary cannot make a copied key differ from a computed one).
      prefix_.prompt = prompt_ids(options_.prompt_template, "", "prompt prefix");
      prefix_.slot = n_slots_++;
    }
  }

  std::size_t capacity() const override { return options_.batch; }
  std::size_t pending() const override { return active_.size(); }
  std::string model_name() const override { return name_; }
  double guidance() const override { return options_.guidance; }

  void submit(StepRequest request) override {
    RANKEMB_CHECK(active_.size() < options_.batch, ErrorCode::Usage,
                  "submit: {} requests already pending (capacity {})", active_.size(), options_.batch);
    Active a;
    a.pos.prompt = prompt_ids(options_.prompt_template, request.current, "current sentence");
    if (auto neg = negative_prompt(request); neg && *neg != a.pos.prompt) {
      a.neg.emplace();
      a.neg->prompt = std::move(*neg);
    }
    a.temperature = request.attempt > 0 ? std::max(options_.temperature, options_.retry_temperature) : options_.temperature;
    if (a.temperature > 0) a.rng = request_rng(options_.seed, request.chain_id, request.step, request.attempt);
    a.request = std::move(request);
    a.pos.slot = take_slot();
    if (a.neg) a.neg->slot = take_slot();
    active_.push_back(std::move(a));
  }

  std::vector<StepResult> poll() override {
    std::vector<StepResult> done;
    if (active_.empty()) return done;
    ensure_room();

    fill_prefix();
    std::vector<std::size_t> slots;
    std::vector<std::vector<std::int64_t>> tokens;
    for (auto& a : active_) {
      start_from_prefix(a.pos);
      if (a.neg) start_from_prefix(*a.neg);
      add_feed(a, a.pos, slots, tokens);
      if (a.neg) add_feed(a, *a.neg, slots, tokens);
    }
    torch::Tensor logits = model_->forward(slots, tokens).to(torch::kFloat32).contiguous();
    for (auto& a : active_) {
      a.pos.fed = a.pos.prompt.size() + a.generated.size();
      if (a.neg) a.neg->fed = a.neg->prompt.size() + a.generated.size();
    }
    RANKEMB_CHECK(logits.dim() == 2 && logits.size(0) == static_cast<std::int64_t>(slots.size()) && logits.size(1) == vocab_,
                  ErrorCode::Other, "forward returned logits of shape {}, expected [{}, {}]",
                  fmt::join(logits.sizes(), ","), slots.size(), vocab_);
    torch::Tensor logp = torch::log_softmax(logits, -1).contiguous();
    const float* base = logp.data_ptr<float>();
    const float g = static_cast<float>(options_.guidance);
    std::vector<float> scores(static_cast<std::size_t>(vocab_));

    std::size_t row = 0;
    std::vector<Active> still;
    still.reserve(active_.size());
    for (auto& a : active_) {
      const float* lpos = base + static_cast<std::int64_t>(row++) * vocab_;
      const float* lneg = nullptr;
      if (a.neg) lneg = base + static_cast<std::int64_t>(row++) * vocab_;
      combine(lpos, lneg, g, scores.size(), scores.data());
      std::int64_t token = a.temperature > 0
                               ? sample_token(scores, a.temperature, options_.top_p, a.rng)
                               : argmax_lowest(scores);
      a.generated.push_back(token);
      const bool stop = std::binary_search(stop_ids_.begin(), stop_ids_.end(), token);
      const bool limit = !stop && a.generated.size() >= static_cast<std::size_t>(options_.max_new_tokens);
      if (stop || limit) {
        done.push_back(finish(a, stop));
      } else {
        still.push_back(std::move(a));
      }
    }
    active_ = std::move(still);
    return done;
  }

 private:
  struct Stream {
    std::size_t slot = 0;
    std::vector<std::int64_t> prompt;
    std::size_t fed = 0;  // tokens of prompt + generated already in the slot's cache
  };
  struct Active {
    StepRequest request;
    Stream pos;
    std::optional<Stream> neg;  // absent when the prompts are equal or g == 1
    std::vector<std::int64_t> generated;
    double temperature = 0;  // 0 = greedy
    std::mt19937_64 rng;
  };

  // The negative stream's prompt, or nothing when guidance cannot act (g == 1, or the paper's
  // negative at a step whose previous sentence is the current one).
  std::optional<std::vector<std::int64_t>> negative_prompt(const StepRequest& r) {
    if (options_.guidance == 1.0) return std::nullopt;
    const bool same = r.previous == r.current;
    if (negative_ == Negative::Copy || (negative_ == Negative::Auto && same))
      return prompt_ids(options_.copy_prompt_template, r.current, "current sentence (copy negative)");
    if (same) return std::nullopt;
    return prompt_ids(options_.prompt_template, r.previous, "previous sentence");
  }

  // Puts the shared prompt prefix into its slot (once, and again after reserve() cleared it).
  void fill_prefix() {
    if (prefix_.prompt.empty() || prefix_.fed > 0) return;
    (void)model_->forward({prefix_.slot}, {prefix_.prompt});
    prefix_.fed = prefix_.prompt.size();
  }

  // A stream with nothing in its slot starts from a copy of the prefix tokens it shares (at
  // least one token of its own is left to feed, which gives the logits).
  void start_from_prefix(Stream& s) {
    if (prefix_.fed == 0 || s.fed > 0) return;
    std::size_t n = 0;
    const std::size_t limit = std::min(prefix_.prompt.size(), s.prompt.size() - 1);
    while (n < limit && prefix_.prompt[n] == s.prompt[n]) ++n;
    if (n == 0) return;
    model_->copy_prefix(prefix_.slot, s.slot, n);
    s.fed = n;
  }

  std::vector<std::int64_t> prompt_ids(const std::string& prompt_template, const std::string& sentence, std::string_view what) {
    std::string user;
    try {
      user = fill_prompt(prompt_template, sentence);
    } catch (Error& e) {
      throw e.with_context(fmt::format("submit: {}", what));
    }
    std::string rendered = model_chat_ ? text::render_user_turn(*model_chat_, user, chat_options_)
                                       : text::render_user_turn(format_, user, chat_options_, bos_);
    text::EncodeOptions enc;
    enc.add_special_tokens = false;  // chat templates carry their own specials (BOS included)
    std::vector<text::TokenId> ids = tokenizer_->encode(rendered, enc);
    std::vector<std::int64_t> out;
    if (!model_chat_ && format_ == text::ChatFormat::None) {
      // A base model sees the raw prompt the way its tokenizer presents any text: with the
      // post-processor's prefix (BOS for Llama-style tokenizers), never its suffix (EOS).
      for (text::TokenId id : tokenizer_->post_template().prefix) out.push_back(id);
    }
    for (text::TokenId id : ids) out.push_back(id);
    RANKEMB_CHECK(!out.empty(), ErrorCode::Input, "submit: the prompt for the {} tokenizes to no tokens", what);
    return out;
  }

  std::size_t take_slot() {
    // 2 * batch slots and at most batch requests of at most two streams: never runs out.
    RANKEMB_CHECK(!free_slots_.empty(), ErrorCode::Other, "no free model slot");
    std::size_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }

  void release_slot(std::size_t slot) {
    model_->clear(slot);
    free_slots_.push_back(slot);
    std::sort(free_slots_.begin(), free_slots_.end(), std::greater<>());
  }

  // Every stream needs prompt + max_new_tokens positions. reserve() clears every slot, so when a
  // longer prompt arrives the running streams are replayed (prompt + generated so far) in the
  // next forward call.
  void ensure_room() {
    std::size_t need = 0;
    for (const auto& a : active_) {
      std::size_t longest = a.pos.prompt.size();
      if (a.neg) longest = std::max(longest, a.neg->prompt.size());
      need = std::max(need, longest + static_cast<std::size_t>(options_.max_new_tokens));
    }
    if (need <= reserved_tokens_) return;
    std::size_t tokens = std::max<std::size_t>(256, (need + 63) / 64 * 64);
    model_->reserve(n_slots_, tokens);
    reserved_tokens_ = tokens;
    prefix_.fed = 0;
    for (auto& a : active_) {
      a.pos.fed = 0;
      if (a.neg) a.neg->fed = 0;
    }
  }

  // The stream's tokens not yet in its slot: the prompt (prefill), the last chosen token (decode),
  // or everything after a re-reserve. `fed` moves on only once the forward call has succeeded.
  static void add_feed(const Active& a, const Stream& s, std::vector<std::size_t>& slots,
                       std::vector<std::vector<std::int64_t>>& tokens) {
    std::vector<std::int64_t> feed;
    const std::size_t total = s.prompt.size() + a.generated.size();
    for (std::size_t i = s.fed; i < total; ++i)
      feed.push_back(i < s.prompt.size() ? s.prompt[i] : a.generated[i - s.prompt.size()]);
    slots.push_back(s.slot);
    tokens.push_back(std::move(feed));
  }

  StepResult finish(Active& a, bool stopped) {
    StepResult r;
    r.ticket = a.request.ticket;
    r.new_tokens = a.generated.size();
    r.hit_token_limit = !stopped;
    std::vector<text::TokenId> ids;
    const std::size_t n = a.generated.size() - (stopped ? 1 : 0);
    const auto known = static_cast<std::int64_t>(tokenizer_->vocab_size());
    for (std::size_t i = 0; i < n; ++i) {
      // Ids past the tokenizer's vocabulary (padding rows of the embedding matrix) have no text.
      if (a.generated[i] < known) ids.push_back(static_cast<text::TokenId>(a.generated[i]));
    }
    r.text = strip_generated(tokenizer_->decode(ids, /*skip_special_tokens=*/true));
    release_slot(a.pos.slot);
    if (a.neg) release_slot(a.neg->slot);
    return r;
  }

  std::shared_ptr<models::CausalLm> model_;
  LlmGeneratorOptions options_;
  std::string name_;
  const text::Tokenizer* tokenizer_ = nullptr;
  text::ChatFormat format_ = text::ChatFormat::None;      // an explicit --chat-template
  std::optional<text::ModelChatTemplate> model_chat_;   // auto with a model template: it wins
  text::ChatOptions chat_options_;
  std::string bos_;
  std::vector<std::int64_t> stop_ids_;  // sorted
  std::int64_t vocab_ = 0;
  std::size_t n_slots_ = 0;
  std::size_t reserved_tokens_ = 0;
  std::vector<std::size_t> free_slots_;  // descending: back() is the lowest free slot
  Negative negative_ = Negative::Previous;
  Stream prefix_;  // the shared prompt prefix in its own slot; empty prompt = no prefix reuse
  std::vector<Active> active_;           // in submission order
};

}  // namespace

std::string_view default_prompt_template() { return kPaperPrompt; }

std::string_view default_copy_prompt_template() { return kCopyPrompt; }

SmallModelRecipe small_model_recipe() { return {.prompt = kSmallModelPrompt}; }

std::string fill_prompt(std::string_view prompt_template, std::string_view sentence) {
  RANKEMB_CHECK(prompt_template.find(kPlaceholder) != std::string_view::npos, ErrorCode::Usage,
                "prompt template has no {} placeholder", kPlaceholder);
  unicode::require_utf8(sentence, "sentence");
  const std::string_view stripped = unicode::python_strip(sentence);
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t at = prompt_template.find(kPlaceholder, pos);
    if (at == std::string_view::npos) break;
    out.append(prompt_template.substr(pos, at - pos));
    out.append(stripped);
    pos = at + kPlaceholder.size();
  }
  out.append(prompt_template.substr(pos));
  return out;
}

std::vector<float> guided_scores(std::span<const float> pos_logits, std::span<const float> neg_logits,
                                 double guidance) {
  RANKEMB_CHECK(!pos_logits.empty(), ErrorCode::Usage, "guided_scores: no logits");
  RANKEMB_CHECK(neg_logits.empty() || neg_logits.size() == pos_logits.size(), ErrorCode::Usage,
                "guided_scores: {} positive vs {} negative logits", pos_logits.size(), neg_logits.size());
  const auto n = static_cast<std::int64_t>(pos_logits.size());
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor rows = neg_logits.empty() ? torch::from_blob(const_cast<float*>(pos_logits.data()), {1, n}, opts).clone()
                                          : torch::stack({torch::from_blob(const_cast<float*>(pos_logits.data()), {n}, opts),
                                                          torch::from_blob(const_cast<float*>(neg_logits.data()), {n}, opts)});
  torch::Tensor logp = torch::log_softmax(rows, -1).contiguous();
  const float* p = logp.data_ptr<float>();
  std::vector<float> out(pos_logits.size());
  // g == 1 is the positive stream alone, exactly (the generator then runs no negative stream).
  const bool unguided = neg_logits.empty() || guidance == 1.0;
  combine(p, unguided ? nullptr : p + n, static_cast<float>(guidance), out.size(), out.data());
  return out;
}

std::int64_t argmax_lowest(std::span<const float> scores) {
  RANKEMB_CHECK(!scores.empty(), ErrorCode::Usage, "argmax of no scores");
  std::size_t best = 0;
  for (std::size_t i = 1; i < scores.size(); ++i)
    if (scores[i] > scores[best]) best = i;  // strict: the first of equal maxima wins
  return static_cast<std::int64_t>(best);
}

std::unique_ptr<SentenceGenerator> make_llm_generator(std::shared_ptr<models::CausalLm> model,
                                                      const LlmGeneratorOptions& options, std::string model_name) {
  if (model_name.empty()) model_name = options.model_dir.empty() ? "causal-lm" : dir_name(options.model_dir);
  return std::make_unique<LlmGenerator>(std::move(model), options, std::move(model_name));
}

std::unique_ptr<SentenceGenerator> make_llm_generator(const LlmGeneratorOptions& options) {
  validate(options);
  RANKEMB_CHECK(!options.model_dir.empty(), ErrorCode::Usage, "make_llm_generator: no model directory");
  models::CausalLmOptions lm;
  lm.dtype = options.dtype;
  std::shared_ptr<models::CausalLm> model;
  try {
    model = models::load_causal_lm(options.model_dir, lm);
  } catch (Error& e) {
    throw e.with_context("loading generator model " + options.model_dir.string());
  }
  return make_llm_generator(std::move(model), options, dir_name(options.model_dir));
}

}  // namespace rankemb::llm
