#include "rankemb/io/file.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "common/expect_error.h"
#include "common/temp_dir.h"

namespace io = rankemb::io;
namespace fs = std::filesystem;
using rankemb::ErrorCode;
using rankemb::test::expect_error;

namespace {

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST(WriteDirectoryAtomic, CreatesThenReplacesWholeDirectory) {
  rankemb::test::TempDir tmp;
  const fs::path root = tmp.path();
  fs::path out = root / "model";
  io::write_directory_atomic(out, [](const fs::path& partial) {
    EXPECT_EQ(partial.filename(), "model.partial");
    io::write_atomic(partial / "a.txt", "first");
    io::write_atomic(partial / "stale.txt", "only in the first version");
  });
  EXPECT_EQ(io::read_file(out / "a.txt"), "first");

  io::write_directory_atomic(out, [](const fs::path& partial) { io::write_atomic(partial / "a.txt", "second"); });
  EXPECT_EQ(io::read_file(out / "a.txt"), "second");
  EXPECT_FALSE(fs::exists(out / "stale.txt"));  // replaced as a whole, not merged
  EXPECT_EQ(names_in(root), std::vector<std::string>{"model"});  // no .partial / .old left behind
}

TEST(WriteDirectoryAtomic, FailureKeepsThePreviousDirectory) {
  rankemb::test::TempDir tmp;
  const fs::path root = tmp.path();
  fs::path out = root / "model";
  io::write_directory_atomic(out, [](const fs::path& partial) { io::write_atomic(partial / "a.txt", "good"); });

  EXPECT_THROW(io::write_directory_atomic(out,
                                          [](const fs::path& partial) {
                                            io::write_atomic(partial / "a.txt", "half");
                                            throw std::runtime_error("killed halfway");
                                          }),
               std::runtime_error);
  EXPECT_EQ(io::read_file(out / "a.txt"), "good");
  EXPECT_EQ(names_in(root), std::vector<std::string>{"model"});

  // A filesystem error inside `fill` becomes Error(Other) (an output failure) naming the output.
  expect_error([&] {
    io::write_directory_atomic(out, [](const fs::path& partial) { fs::rename(partial / "missing", partial / "x"); });
  }, ErrorCode::Other, {"writing", out.string()});
  EXPECT_EQ(io::read_file(out / "a.txt"), "good");
  EXPECT_EQ(names_in(root), std::vector<std::string>{"model"});
}

// A syntax error names line:column; a number too large for a double (nlohmann's out_of_range,
// not a parse_error) is bad input too, and must not escape as an uncaught exception (fuzz finding).
TEST(ReadJson, BadInputIsAnErrorNamingTheFile) {
  rankemb::test::TempDir tmp;
  const fs::path syntax = tmp.path() / "syntax.json";
  io::write_atomic(syntax, "{\n  \"a\": [1,\n");
  expect_error([&] { io::read_json(syntax, ErrorCode::Input); }, ErrorCode::Input, {"syntax.json:3:", "invalid JSON"});

  const fs::path huge = tmp.path() / "huge.json";
  io::write_atomic(huge, "[\"x\", 1" + std::string(400, '1') + "]");
  expect_error([&] { io::read_json(huge, ErrorCode::ModelFormat); }, ErrorCode::ModelFormat, {"huge.json", "invalid JSON"});
}
