#include "hamlet/parallel/communicator.hpp"

#include <ATen/ATen.h>

#include "gloo_communicator.hpp"
#include "hamlet/core/error.hpp"

namespace hamlet::parallel {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int64_t rank() const override { return 0; }
  int64_t world_size() const override { return 1; }
  void all_reduce_sum(at::Tensor&) override {}
  void broadcast(at::Tensor&, int64_t) override {}
};

}  // namespace

// Messages name the command-line flags: these options come from them (or from an INI file with the same keys).
const OptionSpec<DistributedOptions>& DistributedOptions::spec() {
  using O = DistributedOptions;
  static const auto s =
      OptionSpec<O>("parallel")
          .add("world_size", &O::world_size,
               "data-parallel ranks in the group (the estimator decides what they share: bptt the --batch "
               "problems, es / pes the --es.pairs)")
          .add("rank", &O::rank,
               "this process's rank, 0 .. world-size - 1 (rank 0 alone reads and writes files: the other ranks need "
               "no --weights-out, --out or --checkpoint, and rank 0's --resume and --time-limit decide for the "
               "group)")
          .add("rendezvous", &O::rendezvous, "where the ranks meet: tcp://HOST:PORT (rank 0 listens) or file://PATH")
          .add("dist_timeout", &O::timeout_s,
               "seconds a rank waits for the others (rendezvous and every collective) before it fails")
          .rule([](const std::string&, const O& o) {
            HAMLET_CHECK(o.world_size >= 1, "--world-size must be >= 1, got ", o.world_size);
            HAMLET_CHECK(o.rank >= 0 && o.rank < o.world_size, "--rank must be in [0, ", o.world_size, "), got ",
                         o.rank);
            HAMLET_CHECK(o.timeout_s > 0, "--dist-timeout must be > 0 seconds, got ", o.timeout_s);
            if (o.world_size == 1) return;
            HAMLET_CHECK(o.rendezvous.rfind("tcp://", 0) == 0 || o.rendezvous.rfind("file://", 0) == 0,
                         "--rendezvous must be tcp://HOST:PORT or file://PATH for --world-size=", o.world_size,
                         ", got '", o.rendezvous, "'");
          });
  return s;
}

CommunicatorPtr local_communicator() { return std::make_shared<LocalCommunicator>(); }

CommunicatorPtr connect(const DistributedOptions& options) {
  options.validate();
  if (options.world_size == 1) return local_communicator();
  return detail::connect_gloo(options);
}

at::Tensor pack(const TensorList& tensors) {
  TensorList flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.detach().to(at::kCPU, at::kDouble).reshape({-1}));
  if (flat.empty()) return at::zeros({0}, at::kDouble);
  return at::cat(flat).contiguous();
}

TensorList unpack(const at::Tensor& flat, const TensorList& like) {
  TensorList out;
  out.reserve(like.size());
  int64_t offset = 0;
  for (const auto& t : like) {
    HAMLET_CHECK(offset + t.numel() <= flat.numel(), "unpack: ", flat.numel(), " values for tensors of more");
    out.push_back(flat.narrow(0, offset, t.numel()).reshape(t.sizes()).to(t.device(), t.scalar_type()).clone());
    offset += t.numel();
  }
  HAMLET_CHECK(offset == flat.numel(), "unpack: ", flat.numel(), " values for tensors of ", offset);
  return out;
}

void broadcast_tensors(Communicator& communicator, TensorList& tensors, int64_t root) {
  if (communicator.world_size() == 1) return;
  at::Tensor flat = pack(tensors);
  communicator.broadcast(flat, root);
  tensors = unpack(flat, tensors);
}

std::string broadcast_string(Communicator& communicator, const std::string& text, int64_t root) {
  if (communicator.world_size() == 1) return text;
  at::Tensor size = at::full({1}, static_cast<double>(text.size()), at::kDouble);
  communicator.broadcast(size, root);
  at::Tensor bytes = at::zeros({static_cast<int64_t>(size.item<double>())}, at::kDouble);
  if (communicator.rank() == root) {
    auto b = bytes.accessor<double, 1>();
    for (std::size_t i = 0; i < text.size(); ++i) b[static_cast<int64_t>(i)] = static_cast<unsigned char>(text[i]);
  }
  communicator.broadcast(bytes, root);
  std::string out(static_cast<std::size_t>(bytes.numel()), '\0');
  const auto b = bytes.accessor<double, 1>();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(static_cast<unsigned char>(b[static_cast<int64_t>(i)]));
  return out;
}

}  // namespace hamlet::parallel
