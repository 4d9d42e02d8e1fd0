#include "support/catch.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"
#include "hamlet/core/output_file.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
namespace fs = std::filesystem;

TEST_CASE("check_output_path takes new and regular files and refuses every other kind of node, naming it") {
  test::TempDir dir;
  const std::string file = (dir / "file.txt").string();
  { std::ofstream(file) << "x"; }
  CHECK_NOTHROW(check_output_path((dir / "new.h5").string()));
  CHECK_NOTHROW(check_output_path(file));
  fs::create_directory(dir / "d");
  CHECK_THROWS_WITH(check_output_path((dir / "d").string(), "--out"), Catch::Contains("--out '" + (dir / "d").string() +
                                                                                      "' exists and is a directory"));
  REQUIRE(::mkfifo((dir / "f").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(check_output_path((dir / "f").string()), Catch::Contains("is a FIFO"));
  fs::create_symlink(file, dir / "l");
  CHECK_THROWS_WITH(check_output_path((dir / "l").string()), Catch::Contains("is a symbolic link to '" + file + "'"));
  fs::create_symlink(dir / "nowhere", dir / "dangling");
  CHECK_THROWS_WITH(check_output_path((dir / "dangling").string()), Catch::Contains("is a symbolic link"));
  CHECK_THROWS_WITH(check_output_path((dir / "no/dir/x").string()), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(check_output_path(""), Catch::Contains("empty"));
}

TEST_CASE("write_file_atomically replaces a regular file whole, and a failed write leaves the old file and no temporary") {
  test::TempDir dir;
  const std::string file = (dir / "out.txt").string();
  write_text_atomically(file, "first");
  write_text_atomically(file, "second");
  const auto read = [&] {
    std::ifstream in(file);
    std::string text;
    std::getline(in, text);
    return text;
  };
  CHECK(read() == "second");
  CHECK_THROWS_WITH(write_file_atomically(file,
                                          [](const std::string& temp) {
                                            std::ofstream(temp) << "half";
                                            throw Error("disk on fire");
                                          }),
                    Catch::Contains("disk on fire"));
  CHECK(read() == "second");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}
