#include <gtest/gtest.h>

#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace u = rankemb::unicode;

TEST(Utf8, FindsInvalidSequences) {
  EXPECT_FALSE(u::find_invalid_utf8("plain ascii"));
  EXPECT_FALSE(u::find_invalid_utf8("caf\xc3\xa9 \xf0\x9f\x8d\x95"));
  EXPECT_EQ(u::find_invalid_utf8("ab\xff"), 2u);           // invalid lead byte
  EXPECT_EQ(u::find_invalid_utf8("ab\xc3"), 2u);           // truncated sequence
  EXPECT_EQ(u::find_invalid_utf8("\xc0\xaf"), 0u);         // overlong '/'
  EXPECT_EQ(u::find_invalid_utf8("x\xed\xa0\x80"), 1u);    // UTF-16 surrogate U+D800
  EXPECT_EQ(u::find_invalid_utf8("\xf4\x90\x80\x80"), 0u); // past U+10FFFF
}

TEST(Utf8, RequireNamesWhereAndByte) {
  try {
    u::require_utf8("ok\x80", "input.txt:3");
    FAIL() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), rankemb::ErrorCode::Input);
    EXPECT_NE(std::string(e.what()).find("input.txt:3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
}

TEST(Utf8, RoundTripsCodePoints) {
  std::string s = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80";
  std::u32string cps = u::to_u32(s);
  ASSERT_EQ(cps, (std::u32string{U'a', 0xE9, 0x4E2D, 0x1F600}));
  EXPECT_EQ(u::to_utf8(cps), s);
}

TEST(Unicode, CategoriesAndNormalization) {
  EXPECT_TRUE(u::is_letter(U'é'));
  EXPECT_TRUE(u::is_number(U'٣'));
  EXPECT_TRUE(u::is_punctuation(U'¿'));
  EXPECT_FALSE(u::is_punctuation(U'$'));
  EXPECT_TRUE(u::is_symbol(U'$'));
  EXPECT_TRUE(u::is_nonspacing_mark(0x301));
  EXPECT_TRUE(u::is_white_space(0x3000));
  EXPECT_FALSE(u::is_white_space(0x200B));
  EXPECT_EQ(u::category_code(U'A'), "Lu");
  EXPECT_EQ(u::normalize("\xc3\xa9", u::NormalForm::NFD), "e\xcc\x81");
  EXPECT_EQ(u::normalize("e\xcc\x81", u::NormalForm::NFC), "\xc3\xa9");
  EXPECT_EQ(u::normalize("\xef\xac\x81", u::NormalForm::NFKC), "fi");  // U+FB01 ligature
  EXPECT_EQ(u::simple_lower(U'Ä'), U'ä');
}
