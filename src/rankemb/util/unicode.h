// UTF-8 validation, code-point iteration and the Unicode properties tokenizers need
// (general categories, case mapping, normalization forms), backed by utf8proc.
// Everything that looks at characters goes through here, so all tokenizers agree on Unicode.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rankemb::unicode {

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points
// past U+10FFFF are invalid), or nullopt when `s` is valid UTF-8.
std::optional<std::size_t> find_invalid_utf8(std::string_view s);

// Throws Error(Input) "<where>: invalid UTF-8 at byte N" when `s` is not valid UTF-8.
void require_utf8(std::string_view s, std::string_view where);

// Decodes the code point starting at s[pos] and advances pos past it. `s` must be valid UTF-8.
char32_t next_codepoint(std::string_view s, std::size_t& pos);

// Number of bytes of the UTF-8 sequence whose lead byte is `lead` (1 for invalid leads).
std::size_t utf8_length(unsigned char lead);

void append_utf8(std::string& out, char32_t cp);
std::string to_utf8(std::u32string_view s);
std::u32string to_u32(std::string_view s);  // `s` must be valid UTF-8

// Unicode general categories, grouped as the Unicode standard groups them (L*, N*, P*, ...).
enum class Category { Letter, Mark, Number, Punctuation, Symbol, Separator, Other };
Category category(char32_t cp);
// The two-letter general category, e.g. "Lu", "Mn", "Zs", "Cc".
std::string_view category_code(char32_t cp);

bool is_letter(char32_t cp);
bool is_number(char32_t cp);
bool is_mark(char32_t cp);         // Mn, Mc, Me
bool is_nonspacing_mark(char32_t cp);  // Mn only (what BERT's accent stripping removes)
bool is_punctuation(char32_t cp);  // P* only
bool is_symbol(char32_t cp);       // S*
// White space as Rust's char::is_whitespace / Unicode White_Space defines it.
bool is_white_space(char32_t cp);
// Python's str.isspace(), what str.split() with no argument splits on: White_Space plus
// U+001C..U+001F. Readers that must split text exactly as a Python reference does use this.
bool is_python_space(char32_t cp);
// Python's str.strip() (and Jinja's `trim`) on valid UTF-8: drops leading and trailing
// is_python_space code points.
std::string_view python_strip(std::string_view s);
// Python's str.splitlines() boundaries: \n \r \v \f U+001C..U+001E U+0085 U+2028 U+2029
// (a \r\n pair is one boundary; the caller handles that).
bool is_python_line_break(char32_t cp);

char32_t simple_lower(char32_t cp);
char32_t simple_upper(char32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
// Normalizes valid UTF-8 text.
std::string normalize(std::string_view s, NormalForm form);

// Full canonical decomposition (NFD, without canonical reordering) of one code point into `out`;
// returns the number of code points, which is `cp` itself when it does not decompose. When the
// result exceeds `capacity` nothing useful is written and the needed size is returned
// (kMaxCanonicalDecomposition is always enough).
inline constexpr std::size_t kMaxCanonicalDecomposition = 8;
std::size_t decompose_canonical(char32_t cp, char32_t* out, std::size_t capacity);

// Bytes to valid UTF-8, each maximal invalid subsequence replaced by U+FFFD (what Rust's
// String::from_utf8_lossy and Python's errors="replace" do), e.g. for decoded byte-level tokens.
std::string utf8_lossy(std::string_view bytes);

}  // namespace rankemb::unicode
