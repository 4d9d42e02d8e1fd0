// Bad input through the hamlet executable never harms a user's file or yields a wrong verdict: output paths that
// are not regular files, unpaired compare inputs, damaged checkpoints and weight files, oversized runs, guessed
// flags, and help of every subcommand.
#include <H5Cpp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hamlet/io/h5.hpp"
#include "hamlet/meta/checkpoint.hpp"
#include "hamlet/tasks/registry.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

using namespace hamlet;
namespace fs = std::filesystem;

namespace {

int hamlet_cli(const std::string& args, std::string* out = nullptr) {
  return test::run_command(test::hamlet_binary() + " " + args + " 2>&1", out);
}

// Names in `dir` that look like a hamlet temporary file.
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp-") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

// Flips one byte inside the stored values of `dataset` (contiguous layout): the file stays valid HDF5, only the
// data changes, as a bit flipped on disk would change it.
void flip_byte_in_dataset(const std::string& path, const std::string& dataset) {
  haddr_t offset = HADDR_UNDEF;
  {
    H5::H5File file(path, H5F_ACC_RDONLY);
    H5::DataSet ds = file.openDataSet(dataset);
    offset = H5Dget_offset(ds.getId());
  }
  REQUIRE(offset != HADDR_UNDEF);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset) + 3);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset) + 3);
  f.write(&c, 1);
}

const std::string kSmall = " --problems=2 --steps=3 --log-level=warn";

}  // namespace

TEST_CASE("an output path that exists and is not a regular file is refused before any work, and left as it was") {
  test::TempDir dir;
  const std::string run = (dir / "run.h5").string();
  REQUIRE(hamlet_cli("evaluate --optimizers=sgd" + kSmall + " --out=" + run) == 0);
  const std::string target = (dir / "target.txt").string();
  { std::ofstream(target) << "keep me"; }

  struct Node {
    std::string name, kind;
  };
  std::vector<Node> nodes;
  fs::create_directory(dir / "a_dir");
  nodes.push_back({"a_dir", "a directory"});
  REQUIRE(::mkfifo((dir / "a_fifo").c_str(), 0644) == 0);
  nodes.push_back({"a_fifo", "a FIFO"});
  fs::create_symlink(target, dir / "a_link");
  nodes.push_back({"a_link", "a symbolic link"});
  // A character device like /dev/null (1, 3); mknod needs root, as CI and the README's commands run.
  if (::mknod((dir / "a_device").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    nodes.push_back({"a_device", "a character device"});
  } else {
    WARN("mknod needs root: the device-node case is not run");
  }

  for (const auto& node : nodes) {
    const std::string path = (dir / node.name).string();
    struct stat before {};
    REQUIRE(::lstat(path.c_str(), &before) == 0);
    const std::vector<std::string> commands = {
        "evaluate --optimizers=sgd" + kSmall + " --out=" + path,
        "tune --optimizers=sgd --tune-problems=2" + kSmall + " --out=" + path,
        "export --in=" + run + " --out=" + path,
        "compare --in=" + run + " --out=" + path,
        "meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=1 --horizon=4 --unroll=2 "
        "--validation-problems=2 --log-level=warn --weights-out=" + path,
        "meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=1 --horizon=4 --unroll=2 "
        "--validation-problems=2 --log-level=warn --weights-out=" + (dir / "w.h5").string() + " --out=" + path,
        "meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=1 --horizon=4 --unroll=2 "
        "--validation-problems=2 --log-level=warn --weights-out=" + (dir / "w.h5").string() + " --checkpoint=" + path,
    };
    for (const auto& command : commands) {
      INFO(command);
      std::string msg;
      CHECK(hamlet_cli(command, &msg) == 2);
      CHECK_THAT(msg, Catch::Contains(node.kind));
      CHECK_THAT(msg, Catch::Contains(path));
      struct stat after {};
      REQUIRE(::lstat(path.c_str(), &after) == 0);
      CHECK((after.st_mode & S_IFMT) == (before.st_mode & S_IFMT));
      CHECK(after.st_ino == before.st_ino);
      CHECK(temporaries(dir.path()).empty());
      CHECK_FALSE(fs::exists(dir / "w.h5"));  // refused before training, so no weights either
    }
  }
  std::ifstream in(target);
  std::string text;
  std::getline(in, text);
  CHECK(text == "keep me");
}

TEST_CASE("compare refuses files of different problems, naming the first differing setting and both values") {
  test::TempDir dir;
  const std::string a = (dir / "a.h5").string(), b = (dir / "b.h5").string(), c = (dir / "c.h5").string();
  REQUIRE(hamlet_cli("evaluate --optimizers=adam" + kSmall + " --out=" + a) == 0);
  REQUIRE(hamlet_cli("evaluate --optimizers=nag --task.dim=5" + kSmall + " --out=" + b) == 0);
  std::string msg;
  CHECK(hamlet_cli("compare --in=" + a + " --in=" + b, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("task option dim is '5' but " + a + " has '10'"));
  CHECK_THAT(msg, Catch::Contains(b));
  CHECK(hamlet_cli("compare --mode=drift --in=" + a + " --in=" + b, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("task option dim is '5'"));

  // The same MLP but another activation: the ReLU and the sigmoid problems are different problems.
  const std::string mlp = " --task=mlp --task.hidden=4" + kSmall;
  REQUIRE(hamlet_cli("evaluate --optimizers=adam --task.activation=sigmoid" + mlp + " --out=" + a) == 0);
  REQUIRE(hamlet_cli("evaluate --optimizers=nag --task.activation=relu" + mlp + " --out=" + b) == 0);
  CHECK(hamlet_cli("compare --in=" + a + " --in=" + b, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("task option activation is 'relu' but " + a + " has 'sigmoid'"));
  // And files of the same problems still pair.
  REQUIRE(hamlet_cli("evaluate --optimizers=nag --task.activation=sigmoid" + mlp + " --out=" + c) == 0);
  CHECK(hamlet_cli("compare --reference=adam --in=" + a + " --in=" + c, &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("| nag |"));
}

TEST_CASE("a checkpoint or weights file with a changed byte is refused by name, files without a checksum load") {
  test::TempDir dir;
  const std::string ckpt = (dir / "ckpt.h5").string(), w = (dir / "w.h5").string();
  const std::string base = "meta-train --task=quadratic --optimizer=phnn-paper --trajectories=2 --horizon=20 "
                           "--unroll=10 --validation-problems=4 --log-level=warn --weights-out=" + w +
                           " --checkpoint=" + ckpt;
  REQUIRE(hamlet_cli(base + " --epochs=1") == 0);
  {
    const io::H5Reader r(ckpt);
    CHECK(r.integrity() == io::H5Reader::Integrity::kValid);
  }
  std::string msg;
  REQUIRE(hamlet_cli("evaluate --optimizers=phnn-paper --optimizer.phnn-paper.weights=" + w + kSmall, &msg) == 0);
  CHECK_THAT(msg, !Catch::Contains("checksum"));

  flip_byte_in_dataset(ckpt, "/weights/0");
  CHECK(hamlet_cli(base + " --epochs=2 --resume", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains(ckpt));
  CHECK_THAT(msg, Catch::Contains("checkpoint does not match the checksum"));
  CHECK_THROWS_WITH(meta::load_checkpoint(ckpt), Catch::Contains("changed or damaged"));

  const std::string first_weight = io::H5Reader(w).children("/weights").front();
  flip_byte_in_dataset(w, "/weights/" + first_weight);
  CHECK(hamlet_cli("evaluate --optimizers=phnn-paper --optimizer.phnn-paper.weights=" + w + kSmall, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains(w + ": this weights file does not match the checksum"));

  // A weights file of an earlier version (schema version 0) has no checksum: it loads, with one warning. A file of
  // version 1 always has one: without it, it was changed.
  const std::string old = (dir / "old.h5").string();
  REQUIRE(hamlet_cli("meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=1 --horizon=4 "
                     "--unroll=2 --validation-problems=2 --log-level=warn --weights-out=" + old) == 0);
  {
    H5::H5File file(old, H5F_ACC_RDWR);
    file.openGroup("/").removeAttr("content_checksum");
  }
  CHECK(hamlet_cli("evaluate --optimizers=phnn-paper --optimizer.phnn-paper.weights=" + old + kSmall, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains(old + ": this weights file has schema_version 1 but no content checksum"));
  {
    H5::H5File file(old, H5F_ACC_RDWR);
    file.openGroup("/").removeAttr("schema_version");
  }
  CHECK(hamlet_cli("evaluate --optimizers=phnn-paper --optimizer.phnn-paper.weights=" + old + kSmall, &msg) == 0);
  CHECK_THAT(msg, Catch::Contains(old + ": this weights file has no content checksum"));
}

TEST_CASE("files that are not weights, given as weights, are named for what they are") {
  test::TempDir dir;
  const std::string run = (dir / "run.h5").string(), ckpt = (dir / "ckpt.h5").string(), w = (dir / "w.h5").string(),
                    meta_run = (dir / "meta.h5").string();
  REQUIRE(hamlet_cli("evaluate --optimizers=sgd" + kSmall + " --out=" + run) == 0);
  REQUIRE(hamlet_cli("meta-train --task=quadratic --optimizer=phnn-paper --epochs=1 --trajectories=1 --horizon=4 "
                     "--unroll=2 --validation-problems=2 --log-level=warn --weights-out=" + w + " --out=" + meta_run +
                     " --checkpoint=" + ckpt) == 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {run, "is a hamlet evaluate run file, not a weights file"},
      {meta_run, "is a hamlet meta-train run file, not a weights file"},
      {ckpt, "is a meta-training checkpoint (--checkpoint), not a weights file"},
  };
  for (const auto& [path, expect] : cases) {
    std::string msg;
    CHECK(hamlet_cli("evaluate --optimizers=phnn-paper --optimizer.phnn-paper.weights=" + path + kSmall, &msg) == 2);
    CHECK_THAT(msg, Catch::Contains(path + " " + expect));
  }
}

TEST_CASE("an oversized run is refused with its sizes before it allocates") {
  test::TempDir dir;
  const std::string out = (dir / "out.h5").string();
  std::string msg;
  CHECK(hamlet_cli("evaluate --optimizers=adam --problems=3000000000 --steps=100 --out=" + out, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("--problems=3000000000 x --steps=100 of adam on quadratic needs about"));
  CHECK_THAT(msg, Catch::Contains("GiB this run may use"));
  CHECK(fs::is_empty(dir.path()));
  CHECK(hamlet_cli("evaluate --optimizers=lstm --problems=100000 --steps=100 --max-memory=0.01 --out=" + out, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("(--max-memory)"));
  CHECK(hamlet_cli("tune --optimizers=adam --tune-problems=3000000000" + kSmall, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("--tune-problems=3000000000"));
  CHECK(hamlet_cli("benchmark --optimizers=adam --problems=3000000000", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("needs about"));
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("flags are spelled out, --config is a file, an optimizer is named once, random weights are marked") {
  test::TempDir dir;
  std::string msg;
  CHECK(hamlet_cli("evaluate --optimizers=sgd --step=3 --problems=2", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("unknown option 'step'"));
  CHECK(hamlet_cli("evaluate --optimizers=sgd --problem=2 --steps=2", &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("unknown option 'problem'"));
  CHECK(hamlet_cli("evaluate --optimizers=sgd --config=" + dir.path().string() + kSmall, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("config file '" + dir.path().string() + "' is a directory"));
  CHECK(hamlet_cli("evaluate --optimizers=adam,sgd,adam" + kSmall, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("--optimizers names 'adam' twice"));
  CHECK(hamlet_cli("evaluate --optimizers=adam --optimizer.lr=0.1" + kSmall, &msg) == 2);
  CHECK_THAT(msg, Catch::Contains("--optimizer.NAME.KEY=VALUE"));

  const std::string out = (dir / "run.h5").string();
  REQUIRE(hamlet_cli("evaluate --optimizers=sgd,phnn-paper" + kSmall + " --out=" + out, &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("phnn-paper has no weights"));
  const io::H5Reader r(out);
  CHECK(r.attribute_string("/methods/phnn-paper", "random_init") == "true");
  CHECK_FALSE(r.has_attribute("/methods/sgd", "random_init"));
}

TEST_CASE("every subcommand's --help prints help and exits 0, help lists the registered names") {
  for (const std::string command :
       {"evaluate", "tune", "meta-train", "benchmark", "export", "compare", "select", "data", "list", "version"}) {
    INFO(command);
    std::string msg;
    CHECK(hamlet_cli(command + " --help", &msg) == 0);
    CHECK_THAT(msg, Catch::Contains(command));
    CHECK_THAT(msg, !Catch::Contains("error:"));
  }
  std::string msg;
  REQUIRE(hamlet_cli("evaluate --help", &msg) == 0);
  for (const auto& name : tasks::task_names()) CHECK_THAT(msg, Catch::Contains(name + " |") || Catch::Contains("| " + name));
  CHECK_THAT(msg, Catch::Contains("mlp-lopt"));
  REQUIRE(hamlet_cli("meta-train --help", &msg) == 0);
  CHECK_THAT(msg, Catch::Contains("phnn-features"));
  CHECK_THAT(msg, Catch::Contains("mlp-lopt"));
}
