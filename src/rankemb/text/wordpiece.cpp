// PLACEHOLDER: replaced by the WordPiece implementation.
#include "rankemb/text/detail/loaders.h"
#include "rankemb/util/error.h"
namespace rankemb::text::detail {
std::unique_ptr<Tokenizer> make_wordpiece(const nlohmann::json&, const std::filesystem::path& f) { fail(ErrorCode::ModelFormat, "{}: WordPiece not implemented yet", f.string()); }
std::unique_ptr<Tokenizer> make_wordpiece_vocab_txt(const std::filesystem::path& f, bool) { fail(ErrorCode::ModelFormat, "{}: WordPiece not implemented yet", f.string()); }
}
