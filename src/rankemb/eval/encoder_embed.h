// The bridge from a libtorch SentenceEncoder to the evaluators' EmbedFn (which stays free of
// libtorch): encode() in no-grad eval mode, rows copied out as float vectors in input order.
#pragma once

#include "rankemb/eval/sts.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/progress.h"

namespace rankemb::eval {

// `encoder` and `progress` must outlive the returned function; each call encodes its texts with
// `options` (batched, length-sorted) and reports progress in sentences.
EmbedFn encoder_embed_fn(models::SentenceEncoder& encoder, const models::EncodeOptions& options, Progress& progress);

}  // namespace rankemb::eval
