#include "gloo_communicator.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "hamlet/core/error.hpp"

namespace hamlet::parallel::detail {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

// Whether process `pid` on this machine still runs (a zombie, killed but not yet reaped, counts as gone).
bool process_alive(int64_t pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return true;
  const char state = line[close + 2];
  return state != 'Z' && state != 'X';
}

// First line of an exception message (c10 errors append a stack trace).
std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

struct Address {
  std::string host;
  uint16_t port = 0;
};

Address parse_tcp(const std::string& rendezvous) {
  const std::string rest = rendezvous.substr(6);
  const auto colon = rest.rfind(':');
  HAMLET_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < rest.size(), "--rendezvous '", rendezvous,
               "' must be tcp://HOST:PORT");
  Address a;
  a.host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  char* end = nullptr;
  const long value = std::strtol(port.c_str(), &end, 10);
  HAMLET_CHECK(end && *end == '\0' && value > 0 && value < 65536, "--rendezvous '", rendezvous,
               "': port must be 1..65535, got '", port, "'");
  a.port = static_cast<uint16_t>(value);
  return a;
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

// The end of the start-up: every stage (rendezvous, handshake, Gloo group) gets what is left of one budget.
class Deadline {
 public:
  explicit Deadline(Millis budget) : end_(Clock::now() + budget) {}
  Millis left() const {
    return std::max(Millis(0), std::chrono::duration_cast<Millis>(end_ - Clock::now()));
  }
  bool passed() const { return Clock::now() >= end_; }

 private:
  Clock::time_point end_;
};

// Whether something accepts a TCP connection at host:port within `wait` (a refused connection answers at once).
// Throws hamlet::Error when the host name does not resolve.
bool accepts_connection(const Address& a, Millis wait) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(a.host.c_str(), std::to_string(a.port).c_str(), &hints, &found);
  if (rc != 0) throw Error("cannot resolve host '" + a.host + "': " + ::gai_strerror(rc));
  bool ok = false;
  for (addrinfo* p = found; p && !ok; p = p->ai_next) {
    const int fd = ::socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, p->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, p->ai_addr, p->ai_addrlen) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      if (::poll(&pfd, 1, static_cast<int>(wait.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return ok;
}

// Whether another socket listens on TCP port `port` of this machine: a bind to the wildcard address, like the
// TCPStore server's (SO_REUSEADDR, IPv6 with IPv4 mapped where the machine has IPv6), is refused.
bool port_taken(uint16_t port) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = -1;
  const int one = 1;
  if (fd >= 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(port);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(port);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  const bool taken = rc != 0 && errno == EADDRINUSE;
  ::close(fd);
  return taken;
}

// The store the Gloo group is created on: waits and gets are cut to what is left of the start-up deadline, so a
// rank that vanishes between the handshake and the group's own rendezvous cannot stretch the start-up. Once the
// group exists the deadline is lifted (the store then keeps its own timeout).
class DeadlineStore final : public c10d::Store {
 public:
  DeadlineStore(c10::intrusive_ptr<c10d::Store> inner, const Deadline* deadline)
      : Store(inner->getTimeout()), inner_(std::move(inner)), deadline_(deadline) {}
  void lift() { deadline_ = nullptr; }

  void set(const std::string& key, const std::vector<uint8_t>& value) override { inner_->set(key, value); }
  std::vector<uint8_t> compareSet(const std::string& key, const std::vector<uint8_t>& current,
                                  const std::vector<uint8_t>& value) override {
    return inner_->compareSet(key, current, value);
  }
  std::vector<uint8_t> get(const std::string& key) override {
    if (deadline_) inner_->wait({key}, bounded(timeout_));
    return inner_->get(key);
  }
  int64_t add(const std::string& key, int64_t value) override { return inner_->add(key, value); }
  bool deleteKey(const std::string& key) override { return inner_->deleteKey(key); }
  bool check(const std::vector<std::string>& keys) override { return inner_->check(keys); }
  int64_t getNumKeys() override { return inner_->getNumKeys(); }
  void wait(const std::vector<std::string>& keys) override { inner_->wait(keys, bounded(timeout_)); }
  void wait(const std::vector<std::string>& keys, const Millis& timeout) override {
    inner_->wait(keys, bounded(timeout));
  }
  void watchKey(const std::string& key, c10d::WatchKeyCallback callback) override {
    inner_->watchKey(key, std::move(callback));
  }

 private:
  Millis bounded(Millis timeout) const {
    if (!deadline_) return timeout;
    // At least 1 ms: a zero timeout means "no timeout" to c10d.
    const Millis left = std::max(Millis(1), deadline_->left());
    return timeout == kNoTimeout ? left : std::min(timeout, left);
  }

  c10::intrusive_ptr<c10d::Store> inner_;
  const Deadline* deadline_;
};

// One rank's entry in the rendezvous' join log.
struct Member {
  int64_t rank = -1, world = 0, pid = 0;
  std::string host;
};

std::string encode(const Member& m) {
  return std::to_string(m.rank) + " " + std::to_string(m.world) + " " + std::to_string(m.pid) + " " + m.host;
}

Member decode(const std::vector<uint8_t>& bytes) {
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  Member m;
  in >> m.rank >> m.world >> m.pid >> m.host;
  return m;
}

std::string join_key(int64_t index) { return "hamlet/join/" + std::to_string(index); }

class GlooCommunicator final : public Communicator {
 public:
  explicit GlooCommunicator(const DistributedOptions& options)
      : rank_(options.rank),
        world_(options.world_size),
        timeout_(std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000))),
        timeout_s_(options.timeout_s),
        rendezvous_(options.rendezvous),
        file_(rendezvous_.rfind("file://", 0) == 0) {
    const Deadline deadline(timeout_);
    const std::string device_host = open_store(deadline);
    handshake(deadline);
    create_group(deadline, device_host);
  }

  int64_t rank() const override { return rank_; }
  int64_t world_size() const override { return world_; }

  void all_reduce_sum(at::Tensor& values) override {
    check_tensor(values, "all-reduce");
    guarded("all-reduce", [&] {
      std::vector<at::Tensor> tensors{values};
      group_->allreduce(tensors)->wait(timeout_);
    });
  }

  void broadcast(at::Tensor& values, int64_t root) override {
    check_tensor(values, "broadcast");
    guarded("broadcast", [&] {
      std::vector<at::Tensor> tensors{values};
      c10d::BroadcastOptions o;
      o.rootRank = static_cast<int>(root);
      group_->broadcast(tensors, o)->wait(timeout_);
    });
  }

 private:
  static void check_tensor(const at::Tensor& t, const char* op) {
    HAMLET_CHECK(t.device().is_cpu() && t.scalar_type() == at::kDouble && t.is_contiguous(), op,
                 ": needs a contiguous float64 CPU tensor");
  }

  std::string format_seconds() const {
    std::ostringstream s;
    s << timeout_s_ << " s";
    return s.str();
  }

  // "the --dist-timeout of 5 s"
  std::string timeout_phrase() const { return "the --dist-timeout of " + format_seconds(); }

  std::string prefix() const { return "rank " + std::to_string(rank_) + " of " + std::to_string(world_) + ": "; }

  std::string detail_message(const std::string& what, const std::string& cause) const {
    return prefix() + what + ": " + first_line(cause);
  }

  static std::string rank_list(const std::vector<int64_t>& ranks) {
    std::string out = ranks.size() == 1 ? "rank " : "ranks ";
    for (std::size_t i = 0; i < ranks.size(); ++i) out += (i ? ", " : "") + std::to_string(ranks[i]);
    return out;
  }

  // "rank 1 (pid 123 on host)", with ", which has exited" when that process on this machine is gone.
  static std::string describe(const Member& m) {
    std::string out = "rank " + std::to_string(m.rank) + " (pid " + std::to_string(m.pid) + " on " + m.host;
    if (m.host == host_name() && m.pid != ::getpid() && !process_alive(m.pid)) out += ", which has exited";
    return out + ")";
  }

  // Stage 1: the c10d store. Rank 0 hosts a TCPStore (the others wait until it accepts connections) or every rank
  // opens the FileStore. Returns the host the Gloo transport binds to ("" = the machine's default).
  std::string open_store(const Deadline& deadline) {
    if (file_) {
      try {
        store_ = c10::make_intrusive<c10d::FileStore>(rendezvous_.substr(7), static_cast<int>(world_));
      } catch (const std::exception& e) {
        throw Error(detail_message("cannot open the rendezvous file " + rendezvous_, e.what()));
      }
      return "127.0.0.1";
    }
    const Address a = parse_tcp(rendezvous_);
    const std::string where = a.host + ":" + std::to_string(a.port);
    c10d::TCPStoreOptions so;
    so.port = a.port;
    so.isServer = rank_ == 0;
    so.waitWorkers = false;  // hamlet's handshake waits, and names who is missing
    if (rank_ != 0) {
      // Rank 0 hosts the store: wait here (rather than in c10d's connect, which counts whole seconds and logs every
      // retry) until it accepts connections.
      try {
        while (!accepts_connection(a, std::min(deadline.left(), Millis(500)))) {
          if (deadline.passed()) {
            throw Error(prefix() + "rank 0 never arrived at " + rendezvous_ + " within " + timeout_phrase() +
                        " (nothing accepted a connection at " + where +
                        "; rank 0 hosts the rendezvous there, so it has not started, exited, or listens elsewhere)");
          }
          std::this_thread::sleep_for(std::min(deadline.left(), Millis(50)));
        }
      } catch (const Error& e) {
        const std::string what = e.what();
        if (what.rfind(prefix(), 0) == 0) throw;
        throw Error(prefix() + "rendezvous at " + rendezvous_ + ": " + what);
      }
    }
    so.timeout = std::max(deadline.left(), Millis(1000));
    const std::string taken = prefix() + "cannot host the rendezvous " + rendezvous_ +
                              ": another process already listens on " + where +
                              " (another rank 0, or another run); give every rank of this run another port";
    if (rank_ == 0 && port_taken(a.port)) throw Error(taken);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(a.host, so);
    } catch (const std::exception& e) {
      const std::string cause = e.what();
      if (rank_ == 0 && (cause.find("Address already in use") != std::string::npos ||
                         cause.find("errno: 98") != std::string::npos)) {
        throw Error(taken);
      }
      throw Error(detail_message(std::string(rank_ == 0 ? "cannot host" : "cannot join") + " the rendezvous at " +
                                     rendezvous_,
                                 cause));
    }
    return is_loopback(a.host) ? "127.0.0.1" : "";
  }

  // Stage 2: hamlet's handshake. Every rank appends "rank world pid host" to a join log in the store and reads the
  // log until ranks 0 .. world-1 are all in it, failing at once on a rank that joined twice or a different
  // --world-size, and at the deadline naming the ranks that never arrived.
  void handshake(const Deadline& deadline) {
    Member me;
    me.rank = rank_;
    me.world = world_;
    me.pid = ::getpid();
    me.host = host_name();
    std::vector<Member> members;
    try {
      store_->setTimeout(std::max(deadline.left(), Millis(1000)));
      const int64_t index = store_->add("hamlet/joins", 1);
      const std::string text = encode(me);
      store_->set(join_key(index), std::vector<uint8_t>(text.begin(), text.end()));
      // The group is the log's shortest prefix that holds ranks 0 .. world-1. Every rank reads the same log in the
      // same order, so all agree on it: a clash inside it fails every rank that reads it, and a process that joined
      // after it (a rank started twice) fails alone.
      bool complete = false;
      while (!complete) {
        // An entry counted but not yet written is read on a later round.
        while (!complete && store_->check({join_key(static_cast<int64_t>(members.size()) + 1)})) {
          members.push_back(decode(store_->get(join_key(static_cast<int64_t>(members.size()) + 1))));
          check_member(members, index);
          complete = missing_ranks(members).empty();
        }
        if (complete) break;
        if (deadline.passed()) {
          std::vector<int64_t> present;
          for (const auto& m : members) present.push_back(m.rank);
          std::sort(present.begin(), present.end());
          throw Error(prefix() + rank_list(missing_ranks(members)) + " never arrived at " + rendezvous_ + " within " +
                      timeout_phrase() + " (arrived: " + rank_list(present) + ")");
        }
        std::this_thread::sleep_for(std::min(deadline.left(), Millis(20)));
      }
      if (index > static_cast<int64_t>(members.size())) {
        const auto first =
            std::find_if(members.begin(), members.end(), [&](const Member& m) { return m.rank == rank_; });
        throw Error(prefix() + "rank " + std::to_string(rank_) + " was started twice at " + rendezvous_ + ": " +
                    describe(*first) + " and " + describe(me) +
                    " (this process, which came after the group was complete); give every process of the run its "
                    "own --rank" +
                    leftover_hint());
      }
    } catch (const Error&) {
      // Rank 0's store dies with it: keep it a moment, so that the ranks that see the same clash can read it too.
      if (!file_ && rank_ == 0 && !deadline.passed()) {
        std::this_thread::sleep_for(std::min(deadline.left(), Millis(300)));
      }
      throw;
    } catch (const std::exception& e) {
      std::string what = "the rendezvous at " + rendezvous_ + " failed during the start-up";
      if (!file_ && rank_ != 0) what += " (rank 0 hosts it: has it exited? see its message)";
      const std::vector<int64_t> missing = missing_ranks(members);
      std::vector<int64_t> present;
      for (int64_t r = 0; r < world_; ++r) {
        if (std::find(missing.begin(), missing.end(), r) == missing.end()) present.push_back(r);
      }
      if (!members.empty() && !missing.empty()) {
        what += "; " + rank_list(present) + " had arrived, " + rank_list(missing) + " had not";
      }
      throw Error(detail_message(what, e.what()));
    }
    peers_.resize(static_cast<std::size_t>(world_));
    for (const auto& m : members) {
      if (m.rank >= 0 && m.rank < world_) peers_[static_cast<std::size_t>(m.rank)] = m;
    }
  }

  // Ranks 0 .. world-1 that have no entry in `members`.
  std::vector<int64_t> missing_ranks(const std::vector<Member>& members) const {
    std::vector<int64_t> out;
    for (int64_t r = 0; r < world_; ++r) {
      if (std::none_of(members.begin(), members.end(), [r](const Member& m) { return m.rank == r; })) out.push_back(r);
    }
    return out;
  }

  std::string leftover_hint() const {
    return file_ ? " (if " + rendezvous_.substr(7) + " is left over from an earlier run, delete it or use a new path)"
                 : "";
  }

  // Throws when the newest entry of the log (number members.size(); this process's is number `mine`) clashes with
  // this rank's --world-size or with an earlier entry.
  void check_member(const std::vector<Member>& members, int64_t mine) const {
    const Member& m = members.back();
    const bool is_me = static_cast<int64_t>(members.size()) == mine;
    if (m.world != world_) {
      throw Error(prefix() + describe(m) + " was started with --world-size=" + std::to_string(m.world) + ", rank " +
                  std::to_string(rank_) + " (this process) with --world-size=" + std::to_string(world_) +
                  ": every rank must be started with the same --world-size" + leftover_hint());
    }
    for (std::size_t i = 0; i + 1 < members.size(); ++i) {
      if (members[i].rank != m.rank) continue;
      const bool earlier_is_me = static_cast<int64_t>(i) + 1 == mine;
      throw Error(prefix() + "rank " + std::to_string(m.rank) + " was started twice at " + rendezvous_ + ": " +
                  describe(members[i]) + (earlier_is_me ? " (this process)" : "") + " and " + describe(m) +
                  (is_me ? " (this process)" : "") + "; give every process of the run its own --rank" +
                  leftover_hint());
    }
  }

  // Stage 3: the Gloo group, on the store, within what is left of the deadline.
  void create_group(const Deadline& deadline, const std::string& device_host) {
    auto bounded = c10::make_intrusive<DeadlineStore>(store_, &deadline);
    try {
      // The group's timeout bounds every collective too, so it stays the whole --dist-timeout; its rendezvous waits
      // go through `bounded`.
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout_);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (!device_host.empty()) {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(device_host));
      } else {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      gloo->threads = 1;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(bounded, static_cast<int>(rank_),
                                                           static_cast<int>(world_), gloo);
    } catch (const std::exception& e) {
      const std::string dead = dead_ranks();
      std::string what = "joining the Gloo group at " + rendezvous_ + " failed";
      if (deadline.passed()) what += " within " + timeout_phrase();
      if (!dead.empty()) what += " (" + dead + " has exited)";
      throw Error(detail_message(what, e.what()));
    }
    bounded->lift();
    store_->setTimeout(timeout_);
  }

  // The ranks on this machine whose process has exited.
  std::string dead_ranks() const {
    const std::string here = host_name();
    std::string out;
    for (std::size_t r = 0; r < peers_.size(); ++r) {
      const Member& p = peers_[r];
      if (static_cast<int64_t>(r) == rank_ || p.pid == 0 || p.host != here || process_alive(p.pid)) continue;
      out += (out.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " (pid " + std::to_string(p.pid) +
             ")";
    }
    return out;
  }

  void guarded(const char* op, const std::function<void()>& body) {
    const auto start = Clock::now();
    try {
      body();
    } catch (const std::exception& e) {
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      // A peer's exit is seen as a closed connection, sometimes a moment before its process is reaped.
      std::string dead = dead_ranks();
      for (int i = 0; i < 20 && dead.empty(); ++i) {
        ::usleep(50000);
        dead = dead_ranks();
      }
      std::ostringstream msg;
      msg << op << " failed after " << waited << " s: ";
      if (!dead.empty()) {
        msg << dead << " has exited";
      } else {
        msg << "no rank on this machine has exited, so a rank on another machine failed, or one hung longer than "
               "the timeout ("
            << format_seconds() << ")";
      }
      throw Error(detail_message(msg.str(), e.what()));
    }
  }

  int64_t rank_, world_;
  std::chrono::milliseconds timeout_;
  double timeout_s_;
  std::string rendezvous_;
  bool file_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::vector<Member> peers_;
};

}  // namespace

CommunicatorPtr connect_gloo(const DistributedOptions& options) { return std::make_shared<GlooCommunicator>(options); }

}  // namespace hamlet::parallel::detail
