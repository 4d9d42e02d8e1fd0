#include "hamlet/io/h5.hpp"

#include <H5Cpp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"

namespace hamlet::io {
namespace {

// The C++ API prints a stack of errors on every failed call; hamlet reports its own message instead.
void silence_hdf5() {
  static const bool done = [] {
    H5::Exception::dontPrint();
    return true;
  }();
  (void)done;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : path) {
    if (c == '/') {
      if (!part.empty()) parts.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  if (!part.empty()) parts.push_back(part);
  return parts;
}

bool link_exists(const H5::H5File& file, const std::string& path) {
  std::string prefix;
  for (const auto& part : split_path(path)) {
    prefix += "/" + part;
    if (H5Lexists(file.getId(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

void ensure_groups(H5::H5File& file, const std::string& path, bool include_last) {
  const auto parts = split_path(path);
  std::string prefix;
  const std::size_t n = include_last ? parts.size() : (parts.empty() ? 0 : parts.size() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    prefix += "/" + parts[i];
    if (H5Lexists(file.getId(), prefix.c_str(), H5P_DEFAULT) <= 0) file.createGroup(prefix);
  }
}

std::vector<hsize_t> dims_of(const at::Tensor& t) {
  std::vector<hsize_t> dims;
  for (auto s : t.sizes()) dims.push_back(static_cast<hsize_t>(s));
  if (dims.empty()) dims.push_back(1);
  return dims;
}

bool deflate_available() {
  static const bool available = H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0;
  return available;
}

constexpr unsigned kDeflateLevel = 4;
constexpr hsize_t kMaxChunkValues = hsize_t{1} << 17;  // 1 MiB of float64

// Whole rows per chunk: hamlet reads datasets whole, and h5py users slice problems (the first dimension).
std::vector<hsize_t> chunk_dims(const std::vector<hsize_t>& dims) {
  std::vector<hsize_t> chunk = dims;
  hsize_t row = 1;
  for (std::size_t i = 1; i < dims.size(); ++i) row *= dims[i];
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], kMaxChunkValues / std::max<hsize_t>(row, 1)));
  // A row alone above the cap (a [1, huge] curve) is split along its last dimension instead.
  for (std::size_t i = dims.size(); i-- > 1 && row > kMaxChunkValues;) {
    const hsize_t rest = row / dims[i];
    chunk[i] = std::max<hsize_t>(1, kMaxChunkValues / std::max<hsize_t>(rest, 1));
    row = rest * chunk[i];
  }
  return chunk;
}

// Contiguous below the threshold and for empty datasets (HDF5 refuses zero-sized chunks).
H5::DSetCreatPropList creation_properties(const std::vector<hsize_t>& dims) {
  H5::DSetCreatPropList props;
  hsize_t n = 1;
  for (auto d : dims) n *= d;
  if (!deflate_available() || n < static_cast<hsize_t>(kMinCompressedValues)) return props;
  const auto chunk = chunk_dims(dims);
  props.setChunk(static_cast<int>(chunk.size()), chunk.data());
  props.setShuffle();
  props.setDeflate(kDeflateLevel);
  return props;
}

// Opens a group or dataset by path for attribute access (H5Object's destructor is protected, so hold the
// concrete type).
class ObjectHandle {
 public:
  ObjectHandle(H5::H5File& file, const std::string& path) {
    if (path.empty() || path == "/") {
      group_ = std::make_unique<H5::Group>(file.openGroup("/"));
      return;
    }
    // A path that names no object (an attribute asked of a group the file lacks) fails here and leaves `info`
    // unset; guarded() turns the exception into hamlet::Error naming the file.
    H5O_info_t info{};
#if H5_VERSION_GE(1, 12, 0)
    const herr_t status = H5Oget_info_by_name(file.getId(), path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT);
#else
    const herr_t status = H5Oget_info_by_name(file.getId(), path.c_str(), &info, H5P_DEFAULT);
#endif
    if (status < 0) throw H5::Exception("H5Oget_info_by_name", "no group or dataset " + path);
    if (info.type == H5O_TYPE_DATASET) {
      dataset_ = std::make_unique<H5::DataSet>(file.openDataSet(path));
    } else {
      group_ = std::make_unique<H5::Group>(file.openGroup(path));
    }
  }
  H5::H5Object* operator->() { return group_ ? static_cast<H5::H5Object*>(group_.get()) : dataset_.get(); }

 private:
  std::unique_ptr<H5::Group> group_;
  std::unique_ptr<H5::DataSet> dataset_;
};

template <typename Fn>
auto guarded(const std::string& file, const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const H5::Exception& e) {
    throw Error(file + ": HDF5 error while " + what + ": " + e.getDetailMsg());
  }
}

constexpr const char* kChecksumAttribute = "content_checksum";

// 64-bit FNV-1a: small, dependency-free, and enough to notice damaged or edited data (not an adversary).
class Fnv1a {
 public:
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      hash_ ^= p[i];
      hash_ *= 0x100000001b3ULL;
    }
  }
  void text(const std::string& s) {
    const uint64_t n = s.size();
    bytes(&n, sizeof(n));  // the length first, so that ("ab","c") and ("a","bc") differ
    bytes(s.data(), s.size());
  }
  void number(uint64_t v) { bytes(&v, sizeof(v)); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(hash_));
    return std::string("fnv1a64:") + buf;
  }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// Element count of a simple dataspace (1 for a scalar).
hsize_t element_count(const H5::DataSpace& space) {
  const int rank = space.getSimpleExtentNdims();
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) space.getSimpleExtentDims(dims.data());
  hsize_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

// DataSet::read and Attribute::read take their arguments in opposite orders.
void read_into(H5::DataSet& source, void* out, const H5::DataType& type) { source.read(out, type); }
void read_into(H5::Attribute& source, void* out, const H5::DataType& type) { source.read(type, out); }

// Values of a dataset or attribute, by type class: the digest sees numbers and strings, not HDF5's encodings.
template <typename Source>
void digest_values(Fnv1a& h, Source& source, H5T_class_t type_class, hsize_t n) {
  h.number(static_cast<uint64_t>(type_class));
  h.number(n);
  if (n == 0) return;
  if (type_class == H5T_FLOAT) {
    std::vector<double> v(n);
    read_into(source, v.data(), H5::PredType::NATIVE_DOUBLE);
    h.bytes(v.data(), v.size() * sizeof(double));
  } else if (type_class == H5T_INTEGER) {
    std::vector<int64_t> v(n);
    read_into(source, v.data(), H5::PredType::NATIVE_INT64);
    h.bytes(v.data(), v.size() * sizeof(int64_t));
  } else if (type_class == H5T_STRING) {
    const H5::StrType stored = source.getStrType();
    if (stored.isVariableStr()) {
      std::vector<char*> ptrs(n, nullptr);
      H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
      type.setCset(stored.getCset());
      read_into(source, ptrs.data(), type);
      for (char* p : ptrs) {
        h.text(p ? p : "");
        std::free(p);
      }
    } else {
      std::vector<char> raw(n * stored.getSize());
      read_into(source, raw.data(), stored);
      h.bytes(raw.data(), raw.size());
    }
  }
  // Other classes never occur in hamlet's files; their class and count are in the digest.
}

void digest_attributes(Fnv1a& h, H5::H5Object& object, bool is_root) {
  std::vector<std::string> names;
  const int n = object.getNumAttrs();
  for (int i = 0; i < n; ++i) names.push_back(object.openAttribute(static_cast<unsigned>(i)).getName());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (is_root && name == kChecksumAttribute) continue;
    H5::Attribute attr = object.openAttribute(name);
    h.text("@" + name);
    digest_values(h, attr, attr.getTypeClass(), element_count(attr.getSpace()));
  }
}

void digest_group(Fnv1a& h, H5::Group& group, const std::string& path) {
  h.text(path.empty() ? "/" : path);
  digest_attributes(h, group, path.empty());
  std::vector<std::string> names;
  for (hsize_t i = 0; i < group.getNumObjs(); ++i) names.push_back(group.getObjnameByIdx(i));
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string child = path + "/" + name;
    if (group.childObjType(name) == H5O_TYPE_GROUP) {
      H5::Group sub = group.openGroup(name);
      digest_group(h, sub, child);
    } else if (group.childObjType(name) == H5O_TYPE_DATASET) {
      H5::DataSet ds = group.openDataSet(name);
      h.text(child);
      const H5::DataSpace space = ds.getSpace();
      const int rank = space.getSimpleExtentNdims();
      std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
      if (rank > 0) space.getSimpleExtentDims(dims.data());
      for (auto d : dims) h.number(d);
      digest_values(h, ds, ds.getTypeClass(), element_count(space));
      digest_attributes(h, ds, false);
    } else {
      h.text(child + "?");
    }
  }
}

std::string content_digest(H5::H5File& file) {
  Fnv1a h;
  H5::Group root = file.openGroup("/");
  digest_group(h, root, "");
  return h.hex();
}

}  // namespace

void check_writable(const std::string& path) { H5Writer probe(path); }

struct H5Writer::Impl {
  H5::H5File file;
  bool open = true;
};

H5Writer::H5Writer(std::string path) : path_(std::move(path)) {
  silence_hdf5();
  check_output_path(path_);
  temp_path_ = temporary_path_for(path_);
  try {
    impl_ = std::make_unique<Impl>(Impl{H5::H5File(temp_path_, H5F_ACC_TRUNC)});
  } catch (const H5::Exception&) {
    std::error_code ec;
    std::filesystem::remove(temp_path_, ec);
    throw Error("cannot write output file " + path_ + ": creating " + temp_path_ + " failed (permission denied?)");
  }
}

H5Writer::~H5Writer() {
  if (impl_ && impl_->open) {
    try {
      impl_->file.close();
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove(temp_path_, ec);
  }
}

void H5Writer::write(const std::string& dataset_path, const at::Tensor& values) {
  guarded(temp_path_, "writing " + dataset_path, [&] {
    ensure_groups(impl_->file, dataset_path, false);
    const at::Tensor cpu = values.detach().to(at::kCPU).contiguous();
    const auto dims = dims_of(cpu);
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    if (at::isIntegralType(cpu.scalar_type(), /*includeBool=*/true)) {
      const at::Tensor v = cpu.to(at::kLong).contiguous();
      auto ds = impl_->file.createDataSet(dataset_path, H5::PredType::NATIVE_INT64, space, creation_properties(dims));
      ds.write(v.data_ptr<int64_t>(), H5::PredType::NATIVE_INT64);
    } else {
      const at::Tensor v = cpu.to(at::kDouble).contiguous();
      auto ds = impl_->file.createDataSet(dataset_path, H5::PredType::NATIVE_DOUBLE, space, creation_properties(dims));
      ds.write(v.data_ptr<double>(), H5::PredType::NATIVE_DOUBLE);
    }
  });
}

void H5Writer::write_strings(const std::string& dataset_path, const std::vector<std::string>& values) {
  guarded(temp_path_, "writing " + dataset_path, [&] {
    ensure_groups(impl_->file, dataset_path, false);
    std::vector<const char*> ptrs;
    for (const auto& s : values) ptrs.push_back(s.c_str());
    hsize_t dims[1] = {values.size()};
    H5::DataSpace space(1, dims);
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(H5T_CSET_UTF8);
    auto ds = impl_->file.createDataSet(dataset_path, type, space);
    if (!values.empty()) ds.write(ptrs.data(), type);
  });
}

void H5Writer::set_attribute(const std::string& object_path, const std::string& name, const std::string& value) {
  guarded(temp_path_, "setting attribute " + name + " on " + object_path, [&] {
    if (!link_exists(impl_->file, object_path)) ensure_groups(impl_->file, object_path, true);
    ObjectHandle obj(impl_->file, object_path);
    if (obj->attrExists(name)) obj->removeAttr(name);
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(H5T_CSET_UTF8);
    auto attr = obj->createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
    const char* ptr = value.c_str();
    attr.write(type, &ptr);
  });
}

void H5Writer::set_attribute(const std::string& object_path, const std::string& name, const char* value) {
  set_attribute(object_path, name, std::string(value));
}

void H5Writer::set_attribute(const std::string& object_path, const std::string& name, double value) {
  guarded(temp_path_, "setting attribute " + name + " on " + object_path, [&] {
    if (!link_exists(impl_->file, object_path)) ensure_groups(impl_->file, object_path, true);
    ObjectHandle obj(impl_->file, object_path);
    if (obj->attrExists(name)) obj->removeAttr(name);
    auto attr = obj->createAttribute(name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
    attr.write(H5::PredType::NATIVE_DOUBLE, &value);
  });
}

void H5Writer::set_attribute(const std::string& object_path, const std::string& name, int64_t value) {
  guarded(temp_path_, "setting attribute " + name + " on " + object_path, [&] {
    if (!link_exists(impl_->file, object_path)) ensure_groups(impl_->file, object_path, true);
    ObjectHandle obj(impl_->file, object_path);
    if (obj->attrExists(name)) obj->removeAttr(name);
    auto attr = obj->createAttribute(name, H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR));
    attr.write(H5::PredType::NATIVE_INT64, &value);
  });
}

void H5Writer::create_extendible(const std::string& dataset_path, int64_t columns) {
  HAMLET_CHECK(columns > 0, "extendible dataset ", dataset_path, " needs at least one column");
  guarded(temp_path_, "creating " + dataset_path, [&] {
    ensure_groups(impl_->file, dataset_path, false);
    hsize_t dims[2] = {0, static_cast<hsize_t>(columns)};
    hsize_t max_dims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(columns)};
    H5::DataSpace space(2, dims, max_dims);
    H5::DSetCreatPropList props;
    hsize_t chunk[2] = {64, static_cast<hsize_t>(columns)};
    props.setChunk(2, chunk);
    if (deflate_available()) {
      props.setShuffle();
      props.setDeflate(kDeflateLevel);
    }
    impl_->file.createDataSet(dataset_path, H5::PredType::NATIVE_DOUBLE, space, props);
  });
}

void H5Writer::append_row(const std::string& dataset_path, const std::vector<double>& row) {
  guarded(temp_path_, "appending to " + dataset_path, [&] {
    auto ds = impl_->file.openDataSet(dataset_path);
    hsize_t dims[2];
    ds.getSpace().getSimpleExtentDims(dims);
    HAMLET_CHECK(row.size() == dims[1], dataset_path, ": row of ", row.size(), " values, dataset has ", dims[1],
                 " columns");
    hsize_t new_dims[2] = {dims[0] + 1, dims[1]};
    ds.extend(new_dims);
    H5::DataSpace file_space = ds.getSpace();
    hsize_t start[2] = {dims[0], 0};
    hsize_t count[2] = {1, dims[1]};
    file_space.selectHyperslab(H5S_SELECT_SET, count, start);
    H5::DataSpace mem_space(2, count);
    ds.write(row.data(), H5::PredType::NATIVE_DOUBLE, mem_space, file_space);
  });
}

void H5Writer::commit() {
  HAMLET_CHECK(impl_ && impl_->open, "H5Writer::commit called twice for ", path_);
  guarded(temp_path_, "storing the checksum", [&] {
    const std::string digest = content_digest(impl_->file);
    H5::Group root = impl_->file.openGroup("/");
    if (root.attrExists(kChecksumAttribute)) root.removeAttr(kChecksumAttribute);
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    auto attr = root.createAttribute(kChecksumAttribute, type, H5::DataSpace(H5S_SCALAR));
    const char* ptr = digest.c_str();
    attr.write(type, &ptr);
  });
  guarded(temp_path_, "closing", [&] { impl_->file.close(); });
  impl_->open = false;
  commit_temporary(temp_path_, path_);
}

struct H5Reader::Impl {
  H5::H5File file;
};

H5Reader::H5Reader(const std::string& path) : path_(path) {
  silence_hdf5();
  std::error_code ec;
  HAMLET_CHECK(std::filesystem::exists(path, ec), path, ": no such file");
  try {
    impl_ = std::make_unique<Impl>(Impl{H5::H5File(path, H5F_ACC_RDONLY)});
  } catch (const H5::Exception&) {
    throw Error(path + ": not a readable HDF5 file");
  }
}

H5Reader::~H5Reader() = default;

bool H5Reader::exists(const std::string& object_path) const { return link_exists(impl_->file, object_path); }

at::Tensor H5Reader::read(const std::string& dataset_path) const {
  HAMLET_CHECK(exists(dataset_path), path_, ": no dataset ", dataset_path);
  return guarded(path_, "reading " + dataset_path, [&] {
    auto ds = impl_->file.openDataSet(dataset_path);
    auto space = ds.getSpace();
    const int rank = space.getSimpleExtentNdims();
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    space.getSimpleExtentDims(dims.data());
    std::vector<int64_t> sizes(dims.begin(), dims.end());
    if (ds.getTypeClass() == H5T_INTEGER) {
      at::Tensor out = at::empty(sizes, at::kLong);
      if (out.numel() > 0) ds.read(out.data_ptr<int64_t>(), H5::PredType::NATIVE_INT64);
      return out;
    }
    at::Tensor out = at::empty(sizes, at::kDouble);
    if (out.numel() > 0) ds.read(out.data_ptr<double>(), H5::PredType::NATIVE_DOUBLE);
    return out;
  });
}

std::vector<std::string> H5Reader::read_strings(const std::string& dataset_path) const {
  HAMLET_CHECK(exists(dataset_path), path_, ": no dataset ", dataset_path);
  return guarded(path_, "reading " + dataset_path, [&] {
    auto ds = impl_->file.openDataSet(dataset_path);
    hsize_t n = 0;
    ds.getSpace().getSimpleExtentDims(&n);
    std::vector<char*> ptrs(n, nullptr);
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(ds.getStrType().getCset());
    if (n > 0) ds.read(ptrs.data(), type);
    std::vector<std::string> out;
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      std::free(p);
    }
    return out;
  });
}

bool H5Reader::has_attribute(const std::string& object_path, const std::string& name) const {
  if (!object_path.empty() && object_path != "/" && !exists(object_path)) return false;
  return guarded(path_, "reading attribute " + name + " of " + object_path, [&] {
    ObjectHandle obj(impl_->file, object_path);
    return obj->attrExists(name);
  });
}

namespace {

// Attribute `name` of `object_path` in `file` (of path `path`, for messages), read by `read` from the open attribute.
template <typename Read>
auto read_attribute(H5::H5File& file, const std::string& path, const std::string& object_path, const std::string& name,
                    Read read) {
  return guarded(path, "reading attribute " + name + " of " + object_path, [&] {
    ObjectHandle obj(file, object_path);
    HAMLET_CHECK(obj->attrExists(name), path, ": ", object_path, " has no attribute ", name);
    return read(obj->openAttribute(name));
  });
}

}  // namespace

std::string H5Reader::attribute_string(const std::string& object_path, const std::string& name) const {
  return read_attribute(impl_->file, path_, object_path, name, [](const H5::Attribute& attr) {
    std::string value;
    attr.read(attr.getStrType(), value);
    return value;
  });
}

double H5Reader::attribute_double(const std::string& object_path, const std::string& name) const {
  return read_attribute(impl_->file, path_, object_path, name, [](const H5::Attribute& attr) {
    double value = 0;
    attr.read(H5::PredType::NATIVE_DOUBLE, &value);
    return value;
  });
}

int64_t H5Reader::attribute_int(const std::string& object_path, const std::string& name) const {
  return read_attribute(impl_->file, path_, object_path, name, [](const H5::Attribute& attr) {
    int64_t value = 0;
    attr.read(H5::PredType::NATIVE_INT64, &value);
    return value;
  });
}

DatasetLayout H5Reader::layout(const std::string& dataset_path) const {
  HAMLET_CHECK(exists(dataset_path), path_, ": no dataset ", dataset_path);
  return guarded(path_, "inspecting " + dataset_path, [&] {
    const H5::DSetCreatPropList props = impl_->file.openDataSet(dataset_path).getCreatePlist();
    DatasetLayout out;
    out.chunked = props.getLayout() == H5D_CHUNKED;
    for (int i = 0; i < props.getNfilters(); ++i) {
      unsigned flags = 0, config = 0;
      std::size_t n_values = 0;
      char name[64];
      const H5Z_filter_t filter = props.getFilter(i, flags, n_values, nullptr, sizeof(name), name, config);
      out.shuffle = out.shuffle || filter == H5Z_FILTER_SHUFFLE;
      out.deflate = out.deflate || filter == H5Z_FILTER_DEFLATE;
    }
    return out;
  });
}

H5Reader::Integrity H5Reader::integrity() const {
  return guarded(path_, "checking the content checksum", [&] {
    H5::Group root = impl_->file.openGroup("/");
    if (!root.attrExists(kChecksumAttribute)) return Integrity::kNoChecksum;
    std::string stored;
    auto attr = root.openAttribute(kChecksumAttribute);
    attr.read(attr.getStrType(), stored);
    return stored == content_digest(impl_->file) ? Integrity::kValid : Integrity::kMismatch;
  });
}

bool H5Reader::is_group(const std::string& object_path) const {
  HAMLET_CHECK(object_path.empty() || object_path == "/" || exists(object_path), path_, ": no object ", object_path);
  return guarded(path_, "inspecting " + object_path, [&] {
    if (object_path.empty() || object_path == "/") return true;
    H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
    H5Oget_info_by_name(impl_->file.getId(), object_path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT);
#else
    H5Oget_info_by_name(impl_->file.getId(), object_path.c_str(), &info, H5P_DEFAULT);
#endif
    return info.type == H5O_TYPE_GROUP;
  });
}

std::vector<std::string> H5Reader::attribute_names(const std::string& object_path) const {
  return guarded(path_, "listing the attributes of " + object_path, [&] {
    ObjectHandle obj(impl_->file, object_path);
    std::vector<std::string> names;
    const int n = obj->getNumAttrs();
    for (int i = 0; i < n; ++i) names.push_back(obj->openAttribute(static_cast<unsigned>(i)).getName());
    std::sort(names.begin(), names.end());
    return names;
  });
}

char H5Reader::attribute_kind(const std::string& object_path, const std::string& name) const {
  return guarded(path_, "reading attribute " + name + " of " + object_path, [&] {
    ObjectHandle obj(impl_->file, object_path);
    HAMLET_CHECK(obj->attrExists(name), path_, ": ", object_path, " has no attribute ", name);
    switch (obj->openAttribute(name).getTypeClass()) {
      case H5T_STRING: return 's';
      case H5T_FLOAT: return 'f';
      case H5T_INTEGER: return 'i';
      default: return '?';
    }
  });
}

std::vector<std::string> H5Reader::children(const std::string& group_path) const {
  return guarded(path_, "listing " + group_path, [&] {
    auto group = impl_->file.openGroup(group_path.empty() ? "/" : group_path);
    std::vector<std::string> out;
    for (hsize_t i = 0; i < group.getNumObjs(); ++i) out.push_back(group.getObjnameByIdx(i));
    return out;
  });
}

}  // namespace hamlet::io
