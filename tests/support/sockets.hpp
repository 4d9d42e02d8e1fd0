#pragma once
// Loopback TCP helpers for the tests of the data-parallel start-up (tests/parallel, tests/cli): free ports, taken
// ports, and whether a rank 0 listens.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "support/catch.hpp"

namespace hamlet::test {

// A TCP socket bound to `address` (host byte order: INADDR_LOOPBACK, INADDR_ANY) on a port the kernel chooses.
struct BoundSocket {
  int fd;
  int port;
};

inline BoundSocket bind_ephemeral(uint32_t address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(address);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return {fd, ntohs(a.sin_port)};
}

// A TCP port nothing listens on now (the kernel's choice for an ephemeral bind).
inline int unused_port() {
  const BoundSocket s = bind_ephemeral(INADDR_LOOPBACK);
  ::close(s.fd);
  return s.port;
}

// Whether something accepts connections on 127.0.0.1:port.
inline bool listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace hamlet::test
