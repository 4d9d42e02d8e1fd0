#include <ATen/ATen.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "hamlet/core/error.hpp"
#include "hamlet/parallel/communicator.hpp"
#include "support/catch.hpp"
#include "support/sockets.hpp"
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
        parallel::DistributedOptions o;
        o.world_size = world;
        o.rank = r;
        o.rendezvous = "file://" + (dir / "store").string();
        o.timeout_s = timeout_s;
        body(*parallel::connect(o), r);
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

TEST_CASE("parallel: pack and unpack round-trip shapes, dtypes and values") {
  const TensorList xs = {at::arange(6, at::kFloat).reshape({2, 3}), at::tensor({1.5, -2.0}, at::kDouble),
                         at::zeros({0}, at::kFloat)};
  const at::Tensor flat = parallel::pack(xs);
  CHECK(flat.scalar_type() == at::kDouble);
  CHECK(flat.numel() == 8);
  const TensorList back = parallel::unpack(flat, xs);
  REQUIRE(back.size() == 3);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CHECK(back[i].sizes() == xs[i].sizes());
    CHECK(back[i].scalar_type() == xs[i].scalar_type());
    CHECK(at::equal(back[i], xs[i]));
  }
  CHECK_THROWS_AS(parallel::unpack(at::zeros({7}, at::kDouble), xs), Error);
}

TEST_CASE("parallel: one rank is the identity") {
  const auto c = parallel::local_communicator();
  CHECK(c->rank() == 0);
  CHECK(c->world_size() == 1);
  at::Tensor x = at::tensor({1.0, 2.0}, at::kDouble);
  c->all_reduce_sum(x);
  c->broadcast(x, 0);
  CHECK(at::equal(x, at::tensor({1.0, 2.0}, at::kDouble)));
  CHECK(parallel::broadcast_string(*c, "abc") == "abc");
}

TEST_CASE("parallel: three Gloo ranks all-reduce, broadcast tensors and text") {
  with_group(3, 30, [](parallel::Communicator& c, int64_t r) {
    CHECK(c.world_size() == 3);
    CHECK(c.rank() == r);
    at::Tensor x = at::full({4}, static_cast<double>(r + 1), at::kDouble);
    c.all_reduce_sum(x);
    CHECK(at::equal(x, at::full({4}, 6.0, at::kDouble)));  // 1 + 2 + 3
    TensorList ts = {at::full({2, 2}, static_cast<double>(r), at::kFloat)};
    parallel::broadcast_tensors(c, ts, 2);
    CHECK(at::equal(ts[0], at::full({2, 2}, 2.0, at::kFloat)));
    CHECK(parallel::broadcast_string(c, r == 0 ? "rank zero's text" : "other") == "rank zero's text");
  });
}

TEST_CASE("parallel: bad options and an absent peer are clear errors") {
  parallel::DistributedOptions o;
  o.world_size = 2;
  o.rank = 2;
  o.rendezvous = "file:///tmp/x";
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("--rank must be in [0, 2)"));
  o.rank = 0;
  o.rendezvous = "udp://host:1";
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("tcp://HOST:PORT or file://PATH"));
  o.rendezvous = "tcp://localhost:notaport";
  CHECK_THROWS_WITH(parallel::connect(o), Catch::Contains("port must be 1..65535"));
  // Rank 1 never comes: rank 0 gives up after the timeout with a message naming the rendezvous.
  test::TempDir dir;
  o.rendezvous = "file://" + (dir / "store").string();
  o.timeout_s = 1;
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(parallel::connect(o), Catch::Contains("rank 0 of 2") && Catch::Contains(o.rendezvous));
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 20);
}

namespace {

// Runs connect() for every (rank, world size) pair at once, one thread each, all meeting at `rendezvous`; returns
// each one's error message ("" when it connected) and the seconds it took.
std::vector<std::pair<std::string, double>> connect_all(const std::vector<std::pair<int64_t, int64_t>>& ranks,
                                                        const std::string& rendezvous, double timeout_s) {
  std::vector<std::pair<std::string, double>> out(ranks.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    threads.emplace_back([&, i] {
      const auto start = std::chrono::steady_clock::now();
      try {
        parallel::DistributedOptions o;
        o.rank = ranks[i].first;
        o.world_size = ranks[i].second;
        o.rendezvous = rendezvous;
        o.timeout_s = timeout_s;
        parallel::connect(o);
      } catch (const std::exception& e) {
        out[i].first = e.what();
      }
      out[i].second = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

using test::unused_port;

}  // namespace

TEST_CASE("parallel: the start-up names the missing ranks within the timeout in total") {
  test::TempDir dir;
  const std::string file = "file://" + (dir / "store").string();
  // Rank 1 of 3 alone: ranks 0 and 2 are named, after the timeout and not much later.
  auto r = connect_all({{1, 3}}, file, 2);
  INFO(r[0].first);
  CHECK_THAT(r[0].first, Catch::Contains("rank 1 of 3: ranks 0, 2 never arrived at " + file) &&
                             Catch::Contains("--dist-timeout of 2 s"));
  CHECK(r[0].second >= 1.9);
  CHECK(r[0].second < 3);
  // TCP: rank 0 alone waits for rank 1; rank 1 alone finds no rank 0 listening.
  const std::string tcp = "tcp://127.0.0.1:" + std::to_string(unused_port());
  r = connect_all({{0, 2}}, tcp, 2);
  CHECK_THAT(r[0].first, Catch::Contains("rank 0 of 2: rank 1 never arrived at " + tcp) &&
                             Catch::Contains("--dist-timeout of 2 s"));
  CHECK(r[0].second < 3);
  r = connect_all({{1, 2}}, tcp, 2);
  CHECK_THAT(r[0].first, Catch::Contains("rank 1 of 2: rank 0 never arrived at " + tcp) &&
                             Catch::Contains("--dist-timeout of 2 s"));
  CHECK(r[0].second < 3);
}

TEST_CASE("parallel: a --world-size clash and a rank started twice fail at once, before Gloo") {
  test::TempDir dir;
  auto r = connect_all({{0, 2}, {1, 3}}, "file://" + (dir / "a").string(), 30);
  for (const auto& [message, seconds] : r) {
    INFO(message);
    CHECK_THAT(message, Catch::Contains("was started with --world-size=") && Catch::Contains("--world-size=2") &&
                            Catch::Contains("--world-size=3"));
    CHECK(seconds < 10);
  }
  r = connect_all({{1, 2}, {1, 2}}, "file://" + (dir / "b").string(), 30);
  for (const auto& [message, seconds] : r) {
    INFO(message);
    CHECK_THAT(message, Catch::Contains("rank 1 was started twice"));
    CHECK(seconds < 10);
  }
  const std::string tcp = "tcp://127.0.0.1:" + std::to_string(unused_port());
  r = connect_all({{0, 3}, {1, 3}, {1, 3}}, tcp, 30);
  for (const auto& [message, seconds] : r) {
    INFO(message);
    CHECK_THAT(message, Catch::Contains("rank 1 was started twice"));
    CHECK(seconds < 10);
  }
}

TEST_CASE("parallel: a rank 0 whose port is taken fails at once naming HOST:PORT") {
  const test::BoundSocket taken = test::bind_ephemeral(INADDR_ANY);
  REQUIRE(::listen(taken.fd, 4) == 0);
  const std::string where = "127.0.0.1:" + std::to_string(taken.port);
  const auto r = connect_all({{0, 2}}, "tcp://" + where, 30);
  ::close(taken.fd);
  INFO(r[0].first);
  CHECK_THAT(r[0].first,
             Catch::Contains("rank 0 of 2") && Catch::Contains("another process already listens on " + where));
  CHECK(r[0].second < 5);
}

TEST_CASE("parallel: a process that joins after the group is complete fails alone, the group works") {
  test::TempDir dir;
  const std::string file = "file://" + (dir / "store").string();
  std::atomic<int> connected{0};
  std::atomic<bool> release{false};
  std::vector<std::string> errors(2);
  std::vector<int> summed(2, 0);  // Catch2 assertions stay on the main thread
  std::vector<std::thread> group;
  for (int64_t r = 0; r < 2; ++r) {
    group.emplace_back([&, r] {
      try {
        parallel::DistributedOptions o;
        o.world_size = 2;
        o.rank = r;
        o.rendezvous = file;
        o.timeout_s = 30;
        const auto c = parallel::connect(o);
        ++connected;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        at::Tensor x = at::full({2}, 1.0, at::kDouble);
        c->all_reduce_sum(x);
        summed[static_cast<std::size_t>(r)] = at::equal(x, at::full({2}, 2.0, at::kDouble)) ? 1 : 0;
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  while (connected < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto late = connect_all({{1, 2}}, file, 30);
  release = true;
  for (auto& t : group) t.join();
  INFO(late[0].first);
  CHECK_THAT(late[0].first, Catch::Contains("rank 1 of 2: rank 1 was started twice at " + file) &&
                                Catch::Contains("came after the group was complete") &&
                                Catch::Contains("is left over from an earlier run"));
  CHECK(late[0].second < 5);
  CHECK(errors[0].empty());
  CHECK(errors[1].empty());
  CHECK(summed == std::vector<int>{1, 1});
}
