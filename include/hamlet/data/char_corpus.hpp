#pragma once
// A text corpus as character tokens, for character-level language models (the charlm task).
//
// Vocabulary: a fixed map of bytes to kCharVocab = 98 tokens, the same for every corpus, so a model's shapes do
// not depend on the text it is trained on:
//   0        '\n'
//   1        '\t'
//   2 .. 96  the printable ASCII characters ' ' (0x20) .. '~' (0x7E), token = byte − 30
//   97       every other byte (other control characters such as overstrike backspaces, DEL, the bytes of UTF-8
//            sequences): kOtherToken
// The fortunes corpus is 99.0 % printable ASCII and newlines and 1.0 % tabs; 459 of its bytes (0.02 %) are
// kOtherToken.
//
// The fortunes corpus: <data root>/fortunes/fortunes.txt, written by scripts/fetch_data.sh from the plain-text
// fortune files of Debian's fortunes and fortunes-min packages (43 files in a fixed sorted order, entries in file
// order, each entry followed by a line "%"; 2,576,661 bytes, 15,217 entries, checked by its sha256).
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace hamlet::data {

inline constexpr int64_t kCharVocab = 98;
inline constexpr int64_t kOtherToken = kCharVocab - 1;

// The token of one byte.
int64_t char_token(unsigned char byte);
// The character of a token ('\n', '\t', ' ' .. '~'); '\0' for kOtherToken. Throws for a token outside the vocabulary.
char token_char(int64_t token);

struct CharCorpus {
  at::Tensor tokens;   // [N] uint8 in [0, kCharVocab), one per byte of the file
  std::string source;  // the file it was read from
  int64_t size() const { return tokens.size(0); }
  // Tokens [first, first + count) as text (kOtherToken shown as '\0'), for tests and messages.
  std::string text(int64_t first, int64_t count) const;
};

// Reads a file as tokens. Throws hamlet::Error naming the file when it cannot be read or is empty.
CharCorpus load_char_corpus(const std::string& path);
// The fortunes corpus file in `dir` (empty: <data root>/fortunes).
std::string fortunes_path(const std::string& dir = "");
// load_char_corpus(fortunes_path(dir)); the message for a missing file says how to prepare it.
CharCorpus load_fortunes(const std::string& dir = "");

}  // namespace hamlet::data
