#include "rankemb/llm/guided_decoder.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include <torch/torch.h>
#include <fmt/ranges.h>

#include "rankemb/generate/sentence_generator.h"
#include "rankemb/models/causal_lm.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace rankemb::llm {

namespace {

// float32 combination shared by guided_scores() and the decoder, so the tests of the formula
// test what the decoder computes.
void combine(const float* lpos, const float* lneg, float g, std::size_t n, float* out) {
  if (lneg == nullptr) {
    std::copy(lpos, lpos + n, out);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = lneg[i] + g * (lpos[i] - lneg[i]);
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

void validate(const DecodeRequest& r) {
  RANKEMB_CHECK(!r.positive.empty(), ErrorCode::Usage, "decode request {}: empty prompt", r.ticket);
  RANKEMB_CHECK(r.max_new_tokens >= 1, ErrorCode::Usage, "max_new_tokens must be at least 1, got {}", r.max_new_tokens);
  RANKEMB_CHECK(std::isfinite(r.guidance), ErrorCode::Usage, "guidance must be a finite number, got {}", r.guidance);
  RANKEMB_CHECK(std::isfinite(r.temperature) && r.temperature >= 0, ErrorCode::Usage, "temperature must be >= 0, got {}",
                r.temperature);
  RANKEMB_CHECK(r.top_p > 0 && r.top_p <= 1, ErrorCode::Usage, "top_p must be in (0, 1], got {}", r.top_p);
}

// The stream's tokens not yet in its slot: the prompt (prefill), the last chosen token (decode),
// or everything after a re-reserve. `fed` moves on only once the forward call has succeeded.
template <typename Stream>
std::vector<std::int64_t> unfed(const Stream& s, const std::vector<std::int64_t>& generated) {
  std::vector<std::int64_t> feed;
  const std::size_t total = s.prompt.size() + generated.size();
  for (std::size_t i = s.fed; i < total; ++i) feed.push_back(i < s.prompt.size() ? s.prompt[i] : generated[i - s.prompt.size()]);
  return feed;
}

}  // namespace

GuidedDecoder::GuidedDecoder(std::shared_ptr<models::CausalLm> model, GuidedDecoderOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  RANKEMB_CHECK(model_ != nullptr, ErrorCode::Usage, "guided decoder: no model");
  RANKEMB_CHECK(options_.batch >= 1 && options_.batch <= generate::kMaxBatch, ErrorCode::Usage,
                "batch must be in [1, {}], got {}", generate::kMaxBatch, options_.batch);
  for (std::int64_t id : model_->stop_token_ids()) stop_ids_.push_back(id);
  std::sort(stop_ids_.begin(), stop_ids_.end());
  vocab_ = model_->vocab_size();
  n_slots_ = 2 * options_.batch;
  for (std::size_t s = n_slots_; s-- > 0;) free_slots_.push_back(s);  // pop_back takes the lowest
  if (!options_.shared_prefix.empty() && model_->can_copy_prefix()) {
    prefix_.prompt = options_.shared_prefix;
    prefix_.slot = n_slots_++;
  }
}

void GuidedDecoder::submit(DecodeRequest request) {
  RANKEMB_CHECK(active_.size() < options_.batch, ErrorCode::Usage, "submit: {} requests already pending (capacity {})",
                active_.size(), options_.batch);
  validate(request);
  Active a;
  a.pos.prompt = std::move(request.positive);
  if (!request.negative.empty() && request.guidance != 1.0 && request.negative != a.pos.prompt) {
    a.neg.emplace();
    a.neg->prompt = std::move(request.negative);
  }
  if (request.temperature > 0) a.rng = std::mt19937_64(request.rng_seed);
  a.request = std::move(request);
  a.pos.slot = take_slot();
  if (a.neg) a.neg->slot = take_slot();
  active_.push_back(std::move(a));
}

std::vector<DecodeResult> GuidedDecoder::poll() {
  std::vector<DecodeResult> done;
  if (active_.empty()) return done;
  ensure_room();

  fill_prefix();
  std::vector<std::size_t> slots;
  std::vector<std::vector<std::int64_t>> tokens;
  for (auto& a : active_) {
    for (Stream* s : {&a.pos, a.neg ? &*a.neg : nullptr}) {
      if (s == nullptr) continue;
      start_from_prefix(*s);
      slots.push_back(s->slot);
      tokens.push_back(unfed(*s, a.generated));
    }
  }
  torch::Tensor logits = model_->forward(slots, tokens).to(torch::kFloat32).contiguous();
  for (auto& a : active_) {
    a.pos.fed = a.pos.prompt.size() + a.generated.size();
    if (a.neg) a.neg->fed = a.neg->prompt.size() + a.generated.size();
  }
  RANKEMB_CHECK(logits.dim() == 2 && logits.size(0) == static_cast<std::int64_t>(slots.size()) && logits.size(1) == vocab_,
                ErrorCode::Other, "forward returned logits of shape {}, expected [{}, {}]", fmt::join(logits.sizes(), ","),
                slots.size(), vocab_);
  torch::Tensor logp = torch::log_softmax(logits, -1).contiguous();
  const float* base = logp.data_ptr<float>();
  std::vector<float> scores(static_cast<std::size_t>(vocab_));

  std::size_t row = 0;
  std::vector<Active> still;
  still.reserve(active_.size());
  for (auto& a : active_) {
    const float* lpos = base + static_cast<std::int64_t>(row++) * vocab_;
    const float* lneg = nullptr;
    if (a.neg) lneg = base + static_cast<std::int64_t>(row++) * vocab_;
    combine(lpos, lneg, static_cast<float>(a.request.guidance), scores.size(), scores.data());
    const DecodeRequest& r = a.request;
    std::int64_t token = r.temperature > 0 ? sample_token(scores, r.temperature, r.top_p, a.rng) : argmax_lowest(scores);
    a.generated.push_back(token);
    const bool stop = std::binary_search(stop_ids_.begin(), stop_ids_.end(), token);
    const bool asked = !stop && r.stop_after && r.stop_after(a.generated);
    const bool limit = !stop && !asked && a.generated.size() >= static_cast<std::size_t>(r.max_new_tokens);
    if (stop || asked || limit) {
      done.push_back(finish(a, stop, limit));
    } else {
      still.push_back(std::move(a));
    }
  }
  active_ = std::move(still);
  return done;
}

std::vector<DecodeResult> GuidedDecoder::run(std::vector<DecodeRequest> requests) {
  RANKEMB_CHECK(active_.empty(), ErrorCode::Usage, "run: {} requests already pending", active_.size());
  std::vector<DecodeResult> out(requests.size());
  std::size_t next = 0, returned = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].ticket = i;
  while (returned < requests.size()) {
    while (next < requests.size() && pending() < capacity()) submit(std::move(requests[next++]));
    for (DecodeResult& r : poll()) {
      const std::size_t at = r.ticket;
      out[at] = std::move(r);
      ++returned;
    }
  }
  return out;
}

// Puts the shared prompt prefix into its slot (once, and again after reserve() cleared it).
void GuidedDecoder::fill_prefix() {
  if (prefix_.prompt.empty() || prefix_.fed > 0) return;
  (void)model_->forward({prefix_.slot}, {prefix_.prompt});
  prefix_.fed = prefix_.prompt.size();
}

// A stream with nothing in its slot starts from a copy of the prefix tokens it shares (at least
// one token of its own is left to feed, which gives the logits). The longest common prefix decides
// how many, so tokenization at the boundary cannot make a copied key differ from a computed one.
void GuidedDecoder::start_from_prefix(Stream& s) {
  if (prefix_.fed == 0 || s.fed > 0) return;
  std::size_t n = 0;
  const std::size_t limit = std::min(prefix_.prompt.size(), s.prompt.size() - 1);
  while (n < limit && prefix_.prompt[n] == s.prompt[n]) ++n;
  if (n == 0) return;
  model_->copy_prefix(prefix_.slot, s.slot, n);
  s.fed = n;
}

std::size_t GuidedDecoder::take_slot() {
  // 2 * batch slots and at most batch requests of at most two streams: never runs out.
  RANKEMB_CHECK(!free_slots_.empty(), ErrorCode::Other, "no free model slot");
  std::size_t s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void GuidedDecoder::release_slot(std::size_t slot) {
  model_->clear(slot);
  free_slots_.push_back(slot);
  std::sort(free_slots_.begin(), free_slots_.end(), std::greater<>());
}

// Every stream needs prompt + max_new_tokens positions. reserve() clears every slot, so when a
// longer prompt arrives the running streams are replayed (prompt + generated so far) in the next
// forward call.
void GuidedDecoder::ensure_room() {
  std::size_t need = 0;
  for (const auto& a : active_) {
    std::size_t longest = a.pos.prompt.size();
    if (a.neg) longest = std::max(longest, a.neg->prompt.size());
    need = std::max(need, longest + static_cast<std::size_t>(a.request.max_new_tokens));
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

DecodeResult GuidedDecoder::finish(Active& a, bool stop_token, bool limit) {
  DecodeResult r;
  r.ticket = a.request.ticket;
  r.tokens = std::move(a.generated);
  r.stop_token = stop_token;
  r.hit_token_limit = limit;
  r.streams = a.neg ? 2 : 1;
  release_slot(a.pos.slot);
  if (a.neg) release_slot(a.neg->slot);
  return r;
}

std::vector<float> guided_scores(std::span<const float> pos_logits, std::span<const float> neg_logits, double guidance) {
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
  // g == 1 is the positive stream alone, exactly (the decoder then runs no negative stream).
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

std::string decode_generated(const text::Tokenizer& tokenizer, std::span<const std::int64_t> ids) {
  std::vector<text::TokenId> known;
  const auto vocab = static_cast<std::int64_t>(tokenizer.vocab_size());
  for (std::int64_t id : ids)
    if (id < vocab) known.push_back(static_cast<text::TokenId>(id));
  return tokenizer.decode(known, /*skip_special_tokens=*/true);
}

}  // namespace rankemb::llm
