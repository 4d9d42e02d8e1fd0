#pragma once
// Collective communication between the ranks of a data-parallel meta-training run (README "Data-parallel
// meta-training"). Built on LibTorch's c10d: a Store for the rendezvous (c10d::TCPStore, hosted by rank 0, or
// c10d::FileStore on a shared file system) and c10d::ProcessGroupGloo for the collectives, on the CPU. hamlet adds
// no sockets or reductions of its own.
//
// Rendezvous addresses:
//   tcp://HOST:PORT   rank 0 listens on PORT, every rank connects to HOST:PORT (HOST as seen by the other ranks);
//                     each rank's Gloo transport binds to the address it uses to reach HOST (or to the interface
//                     named by $GLOO_SOCKET_IFNAME)
//   file://PATH       a file every rank can reach (one machine, or a shared file system); it must not be left over
//                     from another run
//
// Failure: every rendezvous wait and every collective is bounded by `timeout_s`. A collective that fails (a peer
// closed its connection) or times out throws hamlet::Error on the ranks still alive, naming the ranks found dead
// on this machine (by the process id each rank published at the rendezvous) or, for ranks on other machines,
// saying that one died or hung. No rank hangs past the timeout.
//
// Tensors: the collectives act in place on contiguous float64 CPU tensors of the same shape on every rank.
#include <cstdint>
#include <memory>
#include <string>

#include "hamlet/core/tensor.hpp"

namespace hamlet::dist {

struct DistributedOptions {
  int64_t world_size = 1;  // ranks in the group
  int64_t rank = 0;        // this process, 0 <= rank < world_size
  std::string rendezvous;  // tcp://HOST:PORT | file://PATH (required when world_size > 1)
  double timeout_s = 180;  // rendezvous and collectives; must cover rank 0's validation between epochs
  void validate() const;
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
// local_communicator() for world_size 1; otherwise joins the Gloo group described by `options` (blocks until all
// ranks arrived; throws hamlet::Error naming the address and the timeout when they do not).
CommunicatorPtr connect(const DistributedOptions& options);

// The tensors flattened into one contiguous float64 CPU vector, in order.
at::Tensor pack(const TensorList& tensors);
// Inverse of pack: slices `flat` back into tensors shaped, typed and placed like `like`.
TensorList unpack(const at::Tensor& flat, const TensorList& like);
// Every rank's `tensors` (same shapes everywhere) replaced by rank `root`'s values.
void broadcast_tensors(Communicator& communicator, TensorList& tensors, int64_t root = 0);
// Rank `root`'s text on every rank.
std::string broadcast_string(Communicator& communicator, const std::string& text, int64_t root = 0);

}  // namespace hamlet::dist
