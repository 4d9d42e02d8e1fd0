#pragma once
// Collective communication between the ranks of a data-parallel meta-training run (README "Data-parallel
// meta-training"). Built on LibTorch's c10d: a Store for the rendezvous (c10d::TCPStore, hosted by rank 0, or
// c10d::FileStore on a shared file system) and c10d::ProcessGroupGloo for the collectives, on the CPU. hamlet adds
// no reductions of its own; its only sockets are start-up probes (whether rank 0 listens yet, whether rank 0's port
// is free).
//
// Rendezvous addresses:
//   tcp://HOST:PORT   rank 0 listens on PORT, every rank connects to HOST:PORT (HOST as seen by the other ranks);
//                     each rank's Gloo transport binds to the address it uses to reach HOST (or to the interface
//                     named by $GLOO_SOCKET_IFNAME)
//   file://PATH       a file every rank can reach (one machine, or a shared file system); it must not be left over
//                     from another run (the start-up usually refuses one, see 2. below)
//
// Start-up (connect()), bounded by `timeout_s` in total: one deadline, and each stage gets what is left of it.
//   1. The store: rank 0 hosts the TCPStore; the other ranks wait until something accepts connections at HOST:PORT.
//      A rank 0 that cannot bind the port fails at once ("another process already listens on HOST:PORT"); a rank
//      that finds no listener by the deadline fails naming rank 0 as the rank that never arrived.
//   2. hamlet's handshake, before Gloo is involved: every rank appends "rank, world size, pid, host" to a join log
//      in the store and reads the log, in order, until ranks 0 .. world_size-1 are all in it; that prefix of the
//      log is the group, the same on every rank. A clash inside it (two processes with the same --rank, or a
//      --world-size that differs from this rank's) fails every rank at once, with a sentence naming the rank(s),
//      their pids and hosts (and both world sizes); a process that joins after the group is complete fails alone,
//      at once (a file:// store left over from an earlier run shows as such a late arrival). At the deadline a rank
//      fails naming the ranks that never arrived, the address and the timeout.
//   3. The Gloo group on the same store; its rendezvous waits are cut to what is left of the deadline.
//   The pids and hosts from the handshake are what later failure messages name dead ranks by.
//
// Failure after the start-up: every collective is bounded by `timeout_s`. A collective that fails (a peer closed its
// connection) or times out throws hamlet::Error on the ranks still alive, naming the ranks found dead on this
// machine (by the process id each rank published at the handshake) or, for ranks on other machines, saying that
// one died or hung. No rank hangs past the timeout.
//
// Every message starts "rank R of W: ".
//
// Tensors: the collectives act in place on contiguous float64 CPU tensors of the same shape on every rank.
#include <cstdint>
#include <memory>
#include <string>

#include "hamlet/core/option_spec.hpp"
#include "hamlet/core/tensor.hpp"

namespace hamlet::parallel {

struct DistributedOptions {
  int64_t world_size = 1;  // ranks in the group
  int64_t rank = 0;        // this process, 0 <= rank < world_size
  std::string rendezvous;  // tcp://HOST:PORT | file://PATH (required when world_size > 1)
  double timeout_s = 180;  // the whole start-up, and each collective; must cover rank 0's validation between epochs
  HAMLET_OPTIONS(DistributedOptions);
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  // values ← Σ over ranks of values.
  virtual void all_reduce_sum(at::Tensor& values) = 0;
  // values ← rank `root`'s values.
  virtual void broadcast(at::Tensor& values, int64_t root) = 0;
  bool is_root() const { return rank() == 0; }
};

using CommunicatorPtr = std::shared_ptr<Communicator>;

// One process: rank 0 of 1, every collective is the identity.
CommunicatorPtr local_communicator();
// local_communicator() for world_size 1; otherwise joins the Gloo group described by `options`: blocks until all
// ranks arrived, at most `timeout_s` in all; throws hamlet::Error as described above (the missing ranks, the address
// and the timeout; a rank started twice; a --world-size clash; a port already in use).
CommunicatorPtr connect(const DistributedOptions& options);

// The tensors flattened into one contiguous float64 CPU vector, in order.
at::Tensor pack(const TensorList& tensors);
// Inverse of pack: slices `flat` back into tensors shaped, typed and placed like `like`.
TensorList unpack(const at::Tensor& flat, const TensorList& like);
// Every rank's `tensors` (same shapes everywhere) replaced by rank `root`'s values.
void broadcast_tensors(Communicator& communicator, TensorList& tensors, int64_t root = 0);
// Rank `root`'s text on every rank.
std::string broadcast_string(Communicator& communicator, const std::string& text, int64_t root = 0);

}  // namespace hamlet::parallel
