#pragma once
// hamlet::Error and the HAMLET_CHECK macro: every user-facing failure (bad option value, corrupt file,
// unknown name) is reported as one hamlet::Error whose message names what was wrong. The CLI turns it into
// a single log line and a non-zero exit code.
#include <sstream>
#include <stdexcept>
#include <string>

namespace hamlet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace hamlet

// Throws hamlet::Error with the streamed arguments as message when `cond` is false.
#define HAMLET_CHECK(cond, ...)                                   \
  do {                                                            \
    if (!(cond)) throw ::hamlet::Error(::hamlet::detail::concat(__VA_ARGS__)); \
  } while (0)
