// The bridge from a SentenceEncoder to EmbedFn (util/types.h), how an encoder reaches the
// evaluators, the chain quality report and the lexical generator: encode() in no-grad eval mode,
// rows copied out as float vectors in input order.
#pragma once

#include "rankemb/models/encoder.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::models {

// `encoder` and `progress` must outlive the returned function; each call encodes its texts with
// `options` (batched, length-sorted) and reports progress in sentences.
EmbedFn encoder_embed_fn(models::SentenceEncoder& encoder, const models::EncodeOptions& options, Progress& progress);

}  // namespace rankemb::models
