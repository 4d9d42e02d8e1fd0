#include "hamlet/io/weights_file.hpp"

#include <set>

#include "hamlet/core/error.hpp"
#include "hamlet/core/options_json.hpp"
#include "hamlet/io/h5.hpp"
#include "hamlet/io/schema.hpp"

namespace hamlet::io {
namespace {

constexpr const char* kKind = "weights file";

// Attributes of the record itself; provenance may not overwrite them, and reading leaves them out of it.
const std::set<std::string> kReservedAttributes = {"optimizer", "architecture", "options", "num_params",
                                                   kSchemaVersionAttribute, "content_checksum"};

// What `path` is when it is no weights file, else "": a run file or a checkpoint given as weights is a common slip.
std::string other_kind(const H5Reader& r) {
  if (r.has_attribute("/", "kind")) return "a hamlet " + r.attribute_string("/", "kind") + " run file";
  if (r.exists("/meta_state")) return "a meta-training checkpoint (--checkpoint)";
  if (!r.exists("/weights") || !r.has_attribute("/", "optimizer") || !r.has_attribute("/", "options") ||
      !r.has_attribute("/", "architecture")) {
    return "an HDF5 file without learned weights";
  }
  return "";
}

void read_attributes(const H5Reader& r, WeightsRecord& w) {
  const auto text = [&r](const char* name) { return r.has_attribute("/", name) ? attribute_text(r, "/", name) : ""; };
  w.optimizer = text("optimizer");
  w.architecture = text("architecture");
  w.options = read_options_text(text("options"), w.schema_version, r.path() + " options");
  if (r.has_attribute("/", "num_params")) w.num_params = r.attribute_int("/", "num_params");
  for (const auto& name : r.attribute_names("/")) {
    if (!kReservedAttributes.count(name)) w.provenance[name] = attribute_text(r, "/", name);
  }
}

void read_tensors(const H5Reader& r, WeightsRecord& w) {
  for (const auto& name : w.names) w.weights.push_back(r.read("/weights/" + name).to(at::kDouble));
}

}  // namespace

void write_weights(const std::string& path, const WeightsRecord& record) {
  HAMLET_CHECK(record.names.size() == record.weights.size(), path, ": ", record.weights.size(), " weights but ",
               record.names.size(), " names");
  for (const auto& [key, value] : record.provenance) {
    HAMLET_CHECK(!kReservedAttributes.count(key), path, ": provenance key '", key,
                 "' is reserved for the weight file's own attributes");
  }
  H5Writer w(path);
  write_schema_version(w, kWeightsFileSchema);
  for (std::size_t i = 0; i < record.names.size(); ++i) {
    w.write("/weights/" + record.names[i], record.weights[i].detach().to(at::kCPU, at::kDouble));
  }
  w.set_attribute("/", "optimizer", record.optimizer);
  w.set_attribute("/", "architecture", record.architecture);
  w.set_attribute("/", "options", options_to_json(record.options));
  w.set_attribute("/", "num_params", record.num_params);
  for (const auto& [key, value] : record.provenance) w.set_attribute("/", key, value);
  w.commit();
}

WeightsRecord read_weights(const std::string& path, WeightsPart part) {
  const H5Reader r(path);
  WeightsRecord w;
  w.path = path;
  if (part == WeightsPart::kAll) {
    const std::string kind = other_kind(r);
    HAMLET_CHECK(kind.empty(), path, " is ", kind, ", not a weights file; give the file that hamlet meta-train ",
                 "wrote with --weights-out");
  }
  w.schema_version = read_schema_version(r, kKind, kWeightsFileSchema);
  if (part == WeightsPart::kAll) check_content(r, kKind, w.schema_version, /*warn_unchecked=*/true);
  read_attributes(r, w);
  if (r.exists("/weights") && r.is_group("/weights")) w.names = r.children("/weights");
  if (part == WeightsPart::kAll) read_tensors(r, w);
  return w;
}

OptionMap provenance_options(const WeightsRecord& record, const std::string& key) {
  const auto it = record.provenance.find(key);
  if (it == record.provenance.end()) return {};
  return read_options_text(it->second, record.schema_version, record.path + " " + key);
}

}  // namespace hamlet::io
