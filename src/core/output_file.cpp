#include "hamlet/core/output_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "hamlet/core/error.hpp"

namespace hamlet {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace

void check_output_path(const std::string& path, const std::string& what) {
  HAMLET_CHECK(!path.empty(), what, ": the output path is empty");
  struct stat st {};
  // lstat, not stat: a link is judged as a link, never by what it points to.
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const auto target = std::filesystem::read_symlink(path, ec);
      throw Error(detail::concat(what, " '", path, "' is a symbolic link", ec ? "" : " to '" + target.string() + "'",
                                 "; hamlet does not write through or replace links: give the target's path"));
    }
    HAMLET_CHECK(S_ISREG(st.st_mode), what, " '", path, "' exists and is ", kind_of(st.st_mode),
                 "; hamlet writes regular files only and replaces nothing else: give a file path");
  } else {
    HAMLET_CHECK(errno == ENOENT, what, " '", path, "' cannot be inspected: ", std::strerror(errno));
  }
  const std::filesystem::path p(path);
  const auto dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  HAMLET_CHECK(std::filesystem::is_directory(dir, ec), "cannot write ", what, " '", path, "': directory '",
               dir.string(), "' does not exist");
}

std::string temporary_path_for(const std::string& path) { return path + ".tmp-" + std::to_string(::getpid()); }

void commit_temporary(const std::string& temp, const std::string& path, const std::string& what) {
  try {
    // The path may have changed while the work ran (minutes of evaluation); judge it again just before the rename.
    check_output_path(path, what);
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    remove_quietly(temp);
    throw Error(detail::concat("cannot write ", what, " '", path, "': rename from ", temp, " failed: ", ec.message()));
  }
}

void write_file_atomically(const std::string& path, const std::function<void(const std::string& temp)>& write,
                           const std::string& what) {
  check_output_path(path, what);
  const std::string temp = temporary_path_for(path);
  try {
    write(temp);
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
  commit_temporary(temp, path, what);
}

void write_text_atomically(const std::string& path, const std::string& text, const std::string& what) {
  write_file_atomically(
      path,
      [&](const std::string& temp) {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        HAMLET_CHECK(out, "cannot write ", what, " '", path, "': creating ", temp, " failed: ", std::strerror(errno));
        out << text;
        out.close();
        HAMLET_CHECK(!out.fail(), "cannot write ", what, " '", path, "': write failed (disk full?)");
      },
      what);
}

}  // namespace hamlet
