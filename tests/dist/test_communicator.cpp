#include <ATen/ATen.h>

#include <chrono>
#include <thread>

#include "hamlet/core/error.hpp"
#include "hamlet/dist/communicator.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;

namespace {

// Runs body(rank) for every rank of a group of `world` Gloo ranks meeting at a fresh file:// rendezvous, one
// thread per rank (Gloo talks over loopback sockets, so threads of one process are as good as processes here).
template <typename Body>
void with_group(int64_t world, double timeout_s, Body body) {
  test::TempDir dir;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        dist::DistributedOptions o;
        o.world_size = world;
        o.rank = r;
        o.rendezvous = "file://" + (dir / "store").string();
        o.timeout_s = timeout_s;
        body(*dist::connect(o), r);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int64_t r = 0; r < world; ++r) {
    INFO("rank " << r);
    CHECK(errors[static_cast<std::size_t>(r)].empty());
  }
}

}  // namespace

TEST_CASE("dist: pack and unpack round-trip shapes, dtypes and values") {
  const TensorList xs = {at::arange(6, at::kFloat).reshape({2, 3}), at::tensor({1.5, -2.0}, at::kDouble),
                         at::zeros({0}, at::kFloat)};
  const at::Tensor flat = dist::pack(xs);
  CHECK(flat.scalar_type() == at::kDouble);
  CHECK(flat.numel() == 8);
  const TensorList back = dist::unpack(flat, xs);
  REQUIRE(back.size() == 3);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CHECK(back[i].sizes() == xs[i].sizes());
    CHECK(back[i].scalar_type() == xs[i].scalar_type());
    CHECK(at::equal(back[i], xs[i]));
  }
  CHECK_THROWS_AS(dist::unpack(at::zeros({7}, at::kDouble), xs), Error);
}

TEST_CASE("dist: one rank is the identity") {
  const auto c = dist::local_communicator();
  CHECK(c->rank() == 0);
  CHECK(c->world_size() == 1);
  at::Tensor x = at::tensor({1.0, 2.0}, at::kDouble);
  c->all_reduce_sum(x);
  c->broadcast(x, 0);
  CHECK(at::equal(x, at::tensor({1.0, 2.0}, at::kDouble)));
  CHECK(dist::broadcast_string(*c, "abc") == "abc");
}

TEST_CASE("dist: three Gloo ranks all-reduce, broadcast tensors and text") {
  with_group(3, 30, [](dist::Communicator& c, int64_t r) {
    CHECK(c.world_size() == 3);
    CHECK(c.rank() == r);
    at::Tensor x = at::full({4}, static_cast<double>(r + 1), at::kDouble);
    c.all_reduce_sum(x);
    CHECK(at::equal(x, at::full({4}, 6.0, at::kDouble)));  // 1 + 2 + 3
    TensorList ts = {at::full({2, 2}, static_cast<double>(r), at::kFloat)};
    dist::broadcast_tensors(c, ts, 2);
    CHECK(at::equal(ts[0], at::full({2, 2}, 2.0, at::kFloat)));
    CHECK(dist::broadcast_string(c, r == 0 ? "rank zero's text" : "other") == "rank zero's text");
  });
}

TEST_CASE("dist: bad options and an absent peer are clear errors") {
  dist::DistributedOptions o;
  o.world_size = 2;
  o.rank = 2;
  o.rendezvous = "file:///tmp/x";
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("--rank must be in [0, 2)"));
  o.rank = 0;
  o.rendezvous = "udp://host:1";
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("tcp://HOST:PORT or file://PATH"));
  o.rendezvous = "tcp://localhost:notaport";
  CHECK_THROWS_WITH(dist::connect(o), Catch::Contains("port must be 1..65535"));
  // Rank 1 never comes: rank 0 gives up after the timeout with a message naming the rendezvous.
  test::TempDir dir;
  o.rendezvous = "file://" + (dir / "store").string();
  o.timeout_s = 1;
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(dist::connect(o), Catch::Contains("rank 0 of 2") && Catch::Contains(o.rendezvous));
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 20);
}
