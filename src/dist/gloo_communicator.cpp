#include "gloo_communicator.hpp"

#include <signal.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "hamlet/core/error.hpp"

namespace hamlet::dist::detail {
namespace {

using Clock = std::chrono::steady_clock;

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

class GlooCommunicator final : public Communicator {
 public:
  explicit GlooCommunicator(const DistributedOptions& options)
      : rank_(options.rank),
        world_(options.world_size),
        timeout_(std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000))),
        timeout_s_(options.timeout_s),
        rendezvous_(options.rendezvous) {
    std::string device_host = "127.0.0.1";
    try {
      if (rendezvous_.rfind("tcp://", 0) == 0) {
        const Address a = parse_tcp(rendezvous_);
        c10d::TCPStoreOptions so;
        so.port = a.port;
        so.isServer = rank_ == 0;
        so.numWorkers = static_cast<std::size_t>(world_);
        so.waitWorkers = true;
        so.timeout = timeout_;
        store_ = c10::make_intrusive<c10d::TCPStore>(a.host, so);
        if (!is_loopback(a.host)) device_host.clear();
      } else {
        store_ = c10::make_intrusive<c10d::FileStore>(rendezvous_.substr(7), static_cast<int>(world_));
        store_->setTimeout(timeout_);
      }
    } catch (const std::exception& e) {
      throw Error(detail_message("rendezvous at " + rendezvous_ + " failed (not all " + std::to_string(world_) +
                                 " ranks arrived within " + format_seconds() + ")", e.what()));
    }
    try {
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
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(rank_), static_cast<int>(world_),
                                                           gloo);
      // Who is who, for naming a dead rank later.
      const std::string me = std::to_string(::getpid()) + " " + host_name();
      store_->set("hamlet/peer/" + std::to_string(rank_), std::vector<uint8_t>(me.begin(), me.end()));
      for (int64_t r = 0; r < world_; ++r) {
        const std::vector<uint8_t> v = store_->get("hamlet/peer/" + std::to_string(r));
        std::istringstream in(std::string(v.begin(), v.end()));
        Peer p;
        in >> p.pid >> p.host;
        peers_.push_back(p);
      }
    } catch (const std::exception& e) {
      throw Error(detail_message("joining the Gloo group at " + rendezvous_ + " failed", e.what()));
    }
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
  struct Peer {
    int64_t pid = 0;
    std::string host;
  };

  static void check_tensor(const at::Tensor& t, const char* op) {
    HAMLET_CHECK(t.device().is_cpu() && t.scalar_type() == at::kDouble && t.is_contiguous(), op,
                 ": needs a contiguous float64 CPU tensor");
  }

  std::string format_seconds() const {
    std::ostringstream s;
    s << timeout_s_ << " s";
    return s.str();
  }

  std::string detail_message(const std::string& what, const std::string& cause) const {
    return "rank " + std::to_string(rank_) + " of " + std::to_string(world_) + ": " + what + ": " + first_line(cause);
  }

  // The ranks on this machine whose process has exited.
  std::string dead_ranks() const {
    const std::string here = host_name();
    std::string out;
    for (std::size_t r = 0; r < peers_.size(); ++r) {
      if (static_cast<int64_t>(r) == rank_ || peers_[r].host != here || process_alive(peers_[r].pid)) continue;
      out += (out.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " (pid " +
             std::to_string(peers_[r].pid) + ")";
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
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::vector<Peer> peers_;
};

}  // namespace

CommunicatorPtr connect_gloo(const DistributedOptions& options) { return std::make_shared<GlooCommunicator>(options); }

}  // namespace hamlet::dist::detail
