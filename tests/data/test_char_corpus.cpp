#include "support/catch.hpp"

#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/data/char_corpus.hpp"
#include "support/data_files.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
using Catch::Contains;

TEST_CASE("the character vocabulary: newline, tab, printable ASCII, one token for every other byte") {
  CHECK(data::kCharVocab == 98);
  CHECK(data::char_token('\n') == 0);
  CHECK(data::char_token('\t') == 1);
  CHECK(data::char_token(' ') == 2);
  CHECK(data::char_token('A') == 'A' - 30);
  CHECK(data::char_token('~') == 96);
  for (int b : {0, 8, 13, 127, 0xC3, 0xFF}) CHECK(data::char_token(static_cast<unsigned char>(b)) == 97);
  // The map is one-to-one on the 97 characters it keeps.
  for (int64_t t = 0; t < data::kOtherToken; ++t) CHECK(data::char_token(data::token_char(t)) == t);
  CHECK(data::token_char(data::kOtherToken) == '\0');
  CHECK_THROWS_WITH(data::token_char(98), Contains("character token 98 outside 0..97"));
}

TEST_CASE("a text file loads as one token per byte, and missing or empty files are refused by name") {
  test::TempDir dir;
  const auto path = test::write_text(dir / "t.txt", std::string("Hi\tyou\n%\n\xC3\xA9", 11));
  const data::CharCorpus c = data::load_char_corpus(path);
  REQUIRE(c.size() == 11);
  CHECK(c.tokens.scalar_type() == at::kByte);
  CHECK(c.source == path);
  CHECK(c.text(0, 9) == "Hi\tyou\n%\n");
  CHECK(c.tokens[9].item<int64_t>() == data::kOtherToken);
  CHECK(c.tokens[10].item<int64_t>() == data::kOtherToken);
  CHECK_THROWS_WITH(c.text(5, 7), Contains("outside the corpus of 11 tokens"));
  CHECK_THROWS_WITH(data::load_char_corpus(test::write_text(dir / "empty.txt", "")), Contains("empty.txt: holds no text"));
  CHECK_THROWS_WITH(data::load_char_corpus((dir / "missing.txt").string()), Contains("missing.txt: cannot open"));
  CHECK_THROWS_WITH(data::load_fortunes(dir.path().string()), Contains("run scripts/fetch_data.sh"));
  CHECK(data::fortunes_path(dir.path().string()) == (dir / "fortunes.txt").string());
}

TEST_CASE("the fortunes corpus: its size, entry count and first entry") {
  const auto dir = test::data_dir() / "fortunes";
  if (!test::have_data(dir / "fortunes.txt")) return;
  const data::CharCorpus c = data::load_fortunes(dir.string());
  // fetch_data.sh checks the file's sha256; these are the facts the tasks rely on.
  REQUIRE(c.size() == 2576661);
  // The first entry of the first file (art), and the corpus ends with an entry's "%" line.
  CHECK(c.text(0, 51) == "7:30, Channel 5: The Bionic Dog (Action/Adventure)\n");
  CHECK(c.text(c.size() - 3, 3) == "\n%\n");
  // 15,217 entries: a '%' between two newlines ends each one.
  const at::Tensor t = c.tokens.to(at::kLong);
  const int64_t nl = data::char_token('\n'), pct = data::char_token('%');
  const at::Tensor ends = t.slice(0, 1, -1).eq(pct) & t.slice(0, 0, -2).eq(nl) & t.slice(0, 2).eq(nl);
  CHECK(ends.sum().item<int64_t>() == 15217);
  // Tabs and the other-byte token occur as counted from the file.
  CHECK(t.eq(1).sum().item<int64_t>() == 25534);
  CHECK(t.eq(data::kOtherToken).sum().item<int64_t>() == 459);
}
