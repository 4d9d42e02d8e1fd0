#include "hamlet/io/schema.hpp"

#include <spdlog/spdlog.h>

#include <mutex>
#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"

namespace hamlet::io {

void write_schema_version(H5Writer& writer, int64_t version) {
  writer.set_attribute("/", kSchemaVersionAttribute, version);
}

int64_t read_schema_version(const H5Reader& reader, const std::string& kind, int64_t current) {
  if (!reader.has_attribute("/", kSchemaVersionAttribute)) return 0;
  HAMLET_CHECK(reader.attribute_kind("/", kSchemaVersionAttribute) == 'i', reader.path(), ": the ", kind,
               "'s schema_version is not an integer");
  const int64_t version = reader.attribute_int("/", kSchemaVersionAttribute);
  HAMLET_CHECK(version >= 0, reader.path(), ": the ", kind, "'s schema_version is ", version);
  HAMLET_CHECK(version <= current, reader.path(), ": this ", kind, " has schema_version ", version,
               ", newer than the version ", current,
               " this hamlet reads; it was written by a newer hamlet: read it with that version (or newer)");
  return version;
}

void check_content(const H5Reader& reader, const std::string& kind, int64_t version, bool warn_unchecked) {
  H5Reader::Integrity state = H5Reader::Integrity::kMismatch;
  try {
    state = reader.integrity();
  } catch (const Error&) {
    // Damage can make the walk itself fail (a value that no longer reads): the same verdict.
  }
  HAMLET_CHECK(state != H5Reader::Integrity::kMismatch, reader.path(), ": this ", kind,
               " does not match the checksum stored when hamlet wrote it: it was changed or damaged afterwards; "
               "use another copy (or rerun what wrote it)");
  if (state == H5Reader::Integrity::kValid) return;
  // Only files older than schema_version carry no checksum; a versioned file without one lost it.
  HAMLET_CHECK(version == 0, reader.path(), ": this ", kind, " has schema_version ", version,
               " but no content checksum, which every such file carries: it was changed afterwards");
  if (!warn_unchecked) return;
  static std::mutex mutex;
  static std::set<std::string> warned;
  const std::lock_guard<std::mutex> lock(mutex);
  if (warned.insert(reader.path()).second) {
    spdlog::warn("{}: this {} has no content checksum (written before hamlet stored them, 2026-12-07); loaded unchecked",
                 reader.path(), kind);
  }
}

OptionMap read_options_text(const std::string& text, int64_t version, const std::string& what) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] == '{' || version > 0) return options_from_json(text, what);
  // Version 0 files written before 2026-12-01 recorded format_options() text.
  try {
    return parse_option_list(text);
  } catch (const Error& e) {
    throw Error(detail::concat(what, ": neither a JSON object nor \"k=v, k=v\": ", e.what()));
  }
}

std::string attribute_text(const H5Reader& reader, const std::string& object, const std::string& name) {
  switch (reader.attribute_kind(object, name)) {
    case 'i': return std::to_string(reader.attribute_int(object, name));
    case 'f': return format_number(reader.attribute_double(object, name));
    default: return reader.attribute_string(object, name);
  }
}

}  // namespace hamlet::io
