// Fault tests (issue 11, item 4). Resume equals a straight run, bit for bit, for every flag that
// carries state across epochs: one epoch, then --resume for the second, against two epochs in one
// go — the model, the optimizer state, the EMA and the metrics rows all the same. And a run
// killed with SIGKILL at random points (a checkpoint write among them), resumed each time, ends
// where a straight run ends, with every checkpoint loadable along the way, no temporary files
// left and one metrics row per epoch.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "nn/safetensors.h"
#include "tests/data/fixtures.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using ember::testing::CommandResult;
using ember::testing::read_text;
using ember::testing::TempDir;

namespace {

using ember::testing::run_app;

// The rows of metrics.csv without their timing columns (img_per_s, seconds).
std::vector<std::string> metrics_rows(const std::string& dir) {
  std::vector<std::string> rows;
  std::string text = read_text(dir + "/metrics.csv"), line;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    line = text.substr(start, end - start);
    size_t k = line.size();
    for (int i = 0; i < 2; ++i) k = line.rfind(',', k - 1);
    rows.push_back(line.substr(0, k));
  }
  return rows;
}

struct StatefulRun {
  const char* name;
  const char* flags;
};

class ResumeEqualsStraight : public ::testing::TestWithParam<StatefulRun> {};

}  // namespace

TEST_P(ResumeEqualsStraight, ModelOptimizerEmaAndMetrics) {
  TempDir dir("resume_equal");
  const std::string a = dir / "straight", b = dir / "resumed";
  // 72 training images in 4 batches: epoch 1 warms up, epoch 2 holds.
  const std::string common = std::string(" --generated-size 96 --val-fraction 0.25 --batch 16 --workers 1 --threads 1"
                                         " --head-epochs 0 --warmup 1 --cooldown 0 --seed 7 ") +
                             GetParam().flags;
  CommandResult r = run_app("ember-effnet" + common + " --hold 1 --out " + a);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_app("ember-effnet" + common + " --hold 0 --out " + b);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_app("ember-effnet" + common + " --hold 1 --out " + b + " --resume " + b + "/last.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;

  auto sa = ember::nn::load_safetensors(a + "/last.safetensors");
  auto sb = ember::nn::load_safetensors(b + "/last.safetensors");
  ASSERT_EQ(sa.tensors.size(), sb.tensors.size());
  int optim = 0, ema = 0;
  for (size_t i = 0; i < sa.tensors.size(); ++i) {
    const auto& [name, t] = sa.tensors[i];
    ASSERT_EQ(name, sb.tensors[i].first);
    EXPECT_TRUE(ember::testing::all_close(sb.tensors[i].second, t, 0, 0)) << name;
    optim += name.rfind("optim.", 0) == 0;
    ema += name.rfind("ema.", 0) == 0;
  }
  EXPECT_GT(optim, 0);
  EXPECT_EQ(ema > 0, std::string(GetParam().flags).find("--ema") != std::string::npos);
  for (const char* key : {"epoch", "iteration", "rng_offset", "best_val_acc", "val_acc"})
    EXPECT_EQ(sa.metadata.at(key), sb.metadata.at(key)) << key;
  EXPECT_EQ(metrics_rows(a), metrics_rows(b));
  EXPECT_EQ(metrics_rows(a).size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(
    StatefulFlags, ResumeEqualsStraight,
    ::testing::Values(StatefulRun{"adamw", "--model effnet_tiny"},
                      StatefulRun{"ema", "--model effnet_tiny --ema 0.9"},
                      StatefulRun{"sam", "--model effnet_tiny --sam 0.05"},
                      StatefulRun{"mixup_cutmix", "--model effnet_tiny --mixup 0.2 --cutmix 1.0"},
                      StatefulRun{"sgd_momentum", "--model effnet_tiny --optimizer sgd --momentum 0.9"},
                      StatefulRun{"vit", "--model vit_tiny --ema 0.9 --mixup 0.2"}),
    [](const ::testing::TestParamInfo<StatefulRun>& info) { return std::string(info.param.name); });

namespace {

// Starts `command` (a shell line; `exec` replaces the shell, so the pid is the app's), kills it
// with SIGKILL after `delay`; true when it had already finished by itself.
bool run_and_kill(const std::string& command, std::chrono::milliseconds delay) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + command + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto until = std::chrono::steady_clock::now() + delay;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status);
}

}  // namespace

TEST(FaultTests, KilledAtRandomPointsAndResumedEndsWhereAStraightRunEnds) {
  TempDir dir("killed_runs");
  const std::string straight = dir / "straight", killed = dir / "killed";
  // 12 epochs of 4 batches (about 0.25 s each here), with EMA and SGD momentum state.
  const std::string flags = std::string(EMBER_APPS_BIN_DIR) +
                            "/ember-effnet --model effnet_tiny --generated-size 96 --val-fraction 0.25 --batch 16"
                            " --workers 1 --threads 1 --head-epochs 3 --warmup 3 --hold 3 --cooldown 3 --seed 9"
                            " --ema 0.9 --optimizer sgd";
  CommandResult r = ember::testing::run_command(flags + " --out " + straight);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string last = killed + "/last.safetensors";
  auto resume = [&] { return fs::exists(last) ? " --resume " + last : std::string(); };

  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int> delay_ms(20, 400);
  int kills = 0;
  for (int round = 0; round < 14; ++round) {
    const int ms = delay_ms(rng);
    SCOPED_TRACE("round " + std::to_string(round) + ", killed after " + std::to_string(ms) + " ms");
    if (!run_and_kill(flags + " --out " + killed + resume(), std::chrono::milliseconds(ms))) ++kills;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(killed, ec)) {
      if (e.path().extension() == ".safetensors") {
        EXPECT_EQ(ember::testing::error_of([&] { ember::nn::load_safetensors(e.path().string()); }), "no error")
            << e.path();
      }
    }
  }
  EXPECT_GE(kills, 10);
  r = ember::testing::run_command(flags + " --out " + killed + resume());
  ASSERT_EQ(r.code, 0) << r.output;

  for (const auto& e : fs::directory_iterator(killed))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  const std::string jsonl = read_text(killed + "/metrics.jsonl");
  std::string expected_epochs, got_epochs;
  for (int epoch = 1; epoch <= 12; ++epoch) expected_epochs += "{\"epoch\": " + std::to_string(epoch) + ",";
  for (size_t start = 0, end; (end = jsonl.find('\n', start)) != std::string::npos; start = end + 1)
    got_epochs += jsonl.substr(start, jsonl.find(',', start) + 1 - start);
  EXPECT_EQ(got_epochs, expected_epochs) << jsonl;
  EXPECT_EQ(metrics_rows(killed), metrics_rows(straight));

  auto sa = ember::nn::load_safetensors(straight + "/last.safetensors");
  auto sb = ember::nn::load_safetensors(last);
  ASSERT_EQ(sa.tensors.size(), sb.tensors.size());
  for (size_t i = 0; i < sa.tensors.size(); ++i) {
    ASSERT_EQ(sa.tensors[i].first, sb.tensors[i].first);
    EXPECT_TRUE(ember::testing::all_close(sb.tensors[i].second, sa.tensors[i].second, 0, 0)) << sa.tensors[i].first;
  }
}
