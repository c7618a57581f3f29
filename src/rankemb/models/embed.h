// The bridge from a SentenceEncoder to EmbedFn (util/types.h), how an encoder reaches the
// evaluators, the chain quality report and the lexical generator: encode() in no-grad eval mode,
// rows copied out as float vectors in input order; and the share of the cores each of several
// threads calling it at once (the server's model workers) computes on.
#pragma once

#include "rankemb/models/encoder.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::models {

// `encoder` and `progress` must outlive the returned function; each call encodes its texts with
// `options` (batched, length-sorted) and reports progress in sentences.
EmbedFn encoder_embed_fn(models::SentenceEncoder& encoder, const models::EncodeOptions& options, Progress& progress);

// An EmbedFn that gives each text the vector it gets alone (one text per forward pass, no
// padding, the same product shapes), for callers whose decisions must not depend on what else is
// embedded with a text: the chain loop's drift guard, whose runs resume byte-identically.
// `encoder` must outlive it.
EmbedFn per_text_embed_fn(models::SentenceEncoder& encoder);

// Makes the calling thread, worker number `worker` of `workers`, compute on its share of the model
// threads (--threads): an equal part, the first `threads % workers` workers one more, at least
// one (so more workers than threads oversubscribe the cores). OpenMP's setting for this thread
// alone; the others keep theirs. Returns that count. For float32 products the gain is for one
// thread per worker: OpenBLAS runs one multi-threaded product at a time, so two workers of
// several threads each queue there.
int take_share_of_threads(int worker, int workers);

}  // namespace rankemb::models
