#include "support/catch.hpp"

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "hamlet/core/error.hpp"
#include "hamlet/data/idx.hpp"
#include "support/test_support.hpp"

using hamlet::Error;
using hamlet::data::IdxArray;
using hamlet::data::read_idx;
using hamlet::data::write_idx;
using Catch::Matchers::Contains;

namespace {

using Bytes = std::vector<uint8_t>;

void write_bytes(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A rank-3 uint8 IDX file of 2 images of 2x3 pixels with payload 0..11.
Bytes small_images_file() {
  Bytes b = {0x00, 0x00, 0x08, 0x03, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (uint8_t v = 0; v < 12; ++v) b.push_back(v);
  return b;
}

// Reads `path` expecting a hamlet::Error and returns its message.
std::string read_error(const std::filesystem::path& path) {
  try {
    read_idx(path.string());
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("read_idx(" << path << ") did not throw");
  return "";
}

// Writes `bytes` to `path` and returns the message of the error read_idx throws on it.
std::string error_reading(const std::filesystem::path& path, const Bytes& bytes) {
  write_bytes(path, bytes);
  return read_error(path);
}

}  // namespace

TEST_CASE("IDX files round-trip through write_idx and read_idx, plain and gzip") {
  hamlet::test::TempDir dir;
  IdxArray images{{3, 4, 5}, {}};
  for (int i = 0; i < 60; ++i) images.values.push_back(static_cast<uint8_t>((i * 37 + 11) % 256));
  const IdxArray labels{{6}, {0, 9, 3, 255, 7, 1}};
  const IdxArray rank4{{1, 2, 1, 2}, {10, 20, 30, 40}};

  for (const std::string suffix : {"", ".gz"}) {
    SECTION("suffix '" + suffix + "'") {
      for (const IdxArray& original : {images, labels, rank4}) {
        const auto path = dir / ("a-idx" + suffix);
        write_idx(path.string(), original);
        const IdxArray back = read_idx(path.string());
        CHECK(back.dims == original.dims);
        CHECK(back.values == original.values);
      }
      // No temporary files are left behind by the atomic write.
      int files = 0;
      for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        (void)entry;
        ++files;
      }
      CHECK(files == 1);
    }
  }

  SECTION("the .gz file really is gzip data (magic 1f 8b), the plain one is raw IDX") {
    write_idx((dir / "x.gz").string(), labels);
    write_idx((dir / "x").string(), labels);
    const Bytes gz = read_bytes(dir / "x.gz");
    REQUIRE(gz.size() >= 2);
    CHECK(gz[0] == 0x1f);
    CHECK(gz[1] == 0x8b);
    CHECK(read_bytes(dir / "x") == Bytes({0, 0, 8, 1, 0, 0, 0, 6, 0, 9, 3, 255, 7, 1}));
  }
}

TEST_CASE("a hand-written big-endian IDX header decodes to the expected dims and values") {
  hamlet::test::TempDir dir;
  const Bytes file = small_images_file();
  write_bytes(dir / "img", file);
  const IdxArray a = read_idx((dir / "img").string());
  CHECK(a.dims == std::vector<int64_t>({2, 2, 3}));
  REQUIRE(a.values.size() == 12);
  for (uint8_t v = 0; v < 12; ++v) CHECK(a.values[v] == v);

  // Sizes above 255 exercise every byte of the big-endian fields: 0x00000102 = 258 labels.
  Bytes labels = {0, 0, 8, 1, 0x00, 0x00, 0x01, 0x02};
  labels.resize(labels.size() + 258, 4);
  write_bytes(dir / "lab", labels);
  const IdxArray l = read_idx((dir / "lab").string());
  CHECK(l.dims == std::vector<int64_t>({258}));
  CHECK(l.values.size() == 258);

  // write_idx emits exactly the bytes it was hand-written from.
  write_idx((dir / "img2").string(), a);
  CHECK(read_bytes(dir / "img2") == file);
}

TEST_CASE("corrupt IDX files are rejected with a message naming the file and the problem") {
  hamlet::test::TempDir dir;
  const auto path = dir / "train-images-idx3-ubyte";
  Bytes file = small_images_file();

  SECTION("bad magic") {
    file[0] = 0x12;
    file[1] = 0x34;
    file[2] = 0x56;
    file[3] = 0x78;
    CHECK_THAT(error_reading(path, file), Contains(path.string()) && Contains("bad IDX magic 0x12345678") &&
                                              Contains("expected 0x00000803"));
  }
  SECTION("wrong type code (0x0D = float)") {
    file[2] = 0x0D;
    CHECK_THAT(error_reading(path, file), Contains(path.string()) && Contains("type code 0x0D"));
  }
  SECTION("rank 0 and rank 5") {
    file[3] = 0;
    CHECK_THAT(error_reading(path, file), Contains("rank 0 "));
    file[3] = 5;
    CHECK_THAT(error_reading(path, file), Contains("rank 5 "));
  }
  SECTION("a zero dimension") {
    file[7] = 0;
    CHECK_THAT(error_reading(path, file), Contains("dimension 0 is 0"));
  }
  SECTION("truncated header") {
    file.resize(10);
    CHECK_THAT(error_reading(path, file), Contains("truncated IDX header"));
    CHECK_THAT(error_reading(path, {0, 0}), Contains("truncated IDX header"));
  }
  SECTION("truncated payload") {
    file.pop_back();
    CHECK_THAT(error_reading(path, file), Contains(path.string()) && Contains("truncated payload: 11 bytes") &&
                                              Contains("2x2x3 need 12"));
  }
  SECTION("trailing bytes") {
    file.push_back(0);
    file.push_back(0);
    CHECK_THAT(error_reading(path, file), Contains("trailing bytes") && Contains("(2 extra)"));
  }
  SECTION("truncated gzip stream") {
    const auto gz = dir / "train-images-idx3-ubyte.gz";
    IdxArray big{{100, 10, 10}, {}};
    for (int i = 0; i < 10000; ++i) big.values.push_back(static_cast<uint8_t>((i * 7919) % 251));
    write_idx(gz.string(), big);
    const Bytes full = read_bytes(gz);
    REQUIRE(full.size() > 40);
    // Cut inside the deflate data, and cut only the 8-byte CRC/size trailer (payload then decodes completely).
    for (const std::size_t keep : {full.size() / 2, full.size() - 4}) {
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(keep));
      CHECK_THAT(error_reading(gz, cut), Contains(gz.string()) && Contains("gzip stream"));
    }
  }
  SECTION("a .gz name on data that is not gzip") {
    const auto gz = dir / "train-images-idx3-ubyte.gz";
    CHECK_THAT(error_reading(gz, file), Contains("not gzip data"));
  }
  SECTION("headers announcing absurd sizes fail as truncated without allocating them") {
    // 2^32-1 x 2^32-1 x 2^32-1 bytes overflow int64; 65535 x 65535 x 65535 (2.8e14) fits but is not there.
    const Bytes huge = {0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2};
    CHECK_THAT(error_reading(path, huge), Contains("truncated payload: 2 bytes") && Contains("need more than 2^63"));
    const Bytes large = {0, 0, 8, 3, 0, 0, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF, 1, 2, 3};
    const auto gz = dir / "large.gz";
    {
      gzFile out = gzopen(gz.string().c_str(), "wb");
      REQUIRE(out != nullptr);
      gzwrite(out, large.data(), static_cast<unsigned>(large.size()));
      REQUIRE(gzclose(out) == Z_OK);
    }
    CHECK_THAT(read_error(gz), Contains("truncated payload: 3 bytes") && Contains("need 281462092005375"));
  }
  SECTION("missing file") {
    const std::string msg = read_error(dir / "nope-idx1-ubyte");
    CHECK_THAT(msg, Contains("nope-idx1-ubyte"));
    CHECK_THAT(msg, Contains("no such file"));
  }
}

TEST_CASE("write_idx validates its input and leaves nothing behind when it cannot write") {
  hamlet::test::TempDir dir;
  SECTION("values not matching the dims") {
    REQUIRE_THROWS_WITH(write_idx((dir / "a").string(), IdxArray{{2, 3}, {1, 2, 3}}),
                        Contains("3 values do not match dimensions 2x3"));
    REQUIRE_THROWS_WITH(write_idx((dir / "a").string(), IdxArray{{0}, {}}), Contains("dimension 0 is 0"));
    REQUIRE_THROWS_WITH(write_idx((dir / "a").string(), IdxArray{{}, {}}), Contains("rank 0"));
    CHECK_FALSE(std::filesystem::exists(dir / "a"));
  }
  SECTION("unwritable destination") {
    for (const std::string name : {"missing-dir/a", "missing-dir/a.gz"}) {
      const auto path = dir / name;
      REQUIRE_THROWS_WITH(write_idx(path.string(), IdxArray{{1}, {1}}), Contains("cannot write output file '" + path.string()));
    }
    // An existing directory is refused before anything is written (core/output_file.hpp), and left alone.
    std::filesystem::create_directories(dir / "occupied" / "child");
    REQUIRE_THROWS_WITH(write_idx((dir / "occupied").string(), IdxArray{{1}, {1}}), Contains("is a directory"));
    CHECK(std::filesystem::is_directory(dir / "occupied" / "child"));
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      (void)entry;
      ++files;
    }
    CHECK(files == 1);
  }
}
