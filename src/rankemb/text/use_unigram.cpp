// PLACEHOLDER: replaced by the USE-Lite unigram implementation.
#include "rankemb/text/detail/loaders.h"
#include "rankemb/util/error.h"
namespace rankemb::text::detail {
std::unique_ptr<Tokenizer> make_use_unigram(const std::filesystem::path& f) { fail(ErrorCode::ModelFormat, "{}: USE unigram not implemented yet", f.string()); }
}
