#include "hamlet/data/char_corpus.hpp"

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/data/dataset.hpp"

namespace hamlet::data {
namespace {

constexpr int kFirstPrintable = 0x20, kLastPrintable = 0x7E;
constexpr int64_t kPrintableOffset = 2 - kFirstPrintable;  // ' ' is token 2, after '\n' and '\t'

// The byte -> token table, built once: the per-byte mapping of a 2.5 MB file then costs one lookup per byte.
const std::array<uint8_t, 256>& token_table() {
  static const std::array<uint8_t, 256> table = [] {
    std::array<uint8_t, 256> t{};
    for (int b = 0; b < 256; ++b) {
      if (b == '\n') t[b] = 0;
      else if (b == '\t') t[b] = 1;
      else if (b >= kFirstPrintable && b <= kLastPrintable) t[b] = static_cast<uint8_t>(b + kPrintableOffset);
      else t[b] = static_cast<uint8_t>(kOtherToken);
    }
    return t;
  }();
  return table;
}

}  // namespace

int64_t char_token(unsigned char byte) { return token_table()[byte]; }

char token_char(int64_t token) {
  HAMLET_CHECK(token >= 0 && token < kCharVocab, "character token ", token, " outside 0..", kCharVocab - 1);
  if (token == 0) return '\n';
  if (token == 1) return '\t';
  if (token == kOtherToken) return '\0';
  return static_cast<char>(token - kPrintableOffset);
}

std::string CharCorpus::text(int64_t first, int64_t count) const {
  HAMLET_CHECK(first >= 0 && count >= 0 && first + count <= size(), "text [", first, ", ", first + count,
               ") outside the corpus of ", size(), " tokens");
  const at::Tensor part = tokens.narrow(0, first, count).contiguous();
  const uint8_t* p = part.data_ptr<uint8_t>();
  std::string out;
  out.reserve(static_cast<std::size_t>(count));
  for (int64_t i = 0; i < count; ++i) out.push_back(token_char(p[i]));
  return out;
}

CharCorpus load_char_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HAMLET_CHECK(in.good(), path, ": cannot open");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  HAMLET_CHECK(!in.bad(), path, ": read error");
  HAMLET_CHECK(!bytes.empty(), path, ": holds no text");
  const auto& table = token_table();
  for (auto& b : bytes) b = table[b];
  CharCorpus c;
  c.tokens = at::from_blob(bytes.data(), {static_cast<int64_t>(bytes.size())}, at::kByte).clone();
  c.source = path;
  return c;
}

std::string fortunes_path(const std::string& dir) {
  const std::filesystem::path base = dir.empty() ? std::filesystem::path(data_root()) / "fortunes" : std::filesystem::path(dir);
  return (base / "fortunes.txt").string();
}

CharCorpus load_fortunes(const std::string& dir) {
  const std::string path = fortunes_path(dir);
  // A missing corpus is the usual first-run state; say which root was tried and how to prepare it.
  HAMLET_CHECK(std::filesystem::is_regular_file(path), path, ": no fortunes corpus (data root ",
               dir.empty() ? data_root() + ", " + data_root_source() : dir,
               "); run scripts/fetch_data.sh, which builds it from Debian's fortunes packages");
  return load_char_corpus(path);
}

}  // namespace hamlet::data
