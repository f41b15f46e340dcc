// What a hostile or unlucky user can hand the apps (issue 11): data whose class count differs
// from the model's, crafted checkpoint metadata, NaN flags, sloppy prediction CSVs, a run killed
// mid-write and resumed, an --ema run resumed, a bad first image under --skip-bad, an empty
// validation split. Each is a clear error naming what was wrong, or works as a user expects.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "apps/common/checkpoint_meta.h"
#include "apps/common/predictions.h"
#include "data/image_io.h"
#include "nn/safetensors.h"
#include "tests/data/fixtures.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using ember::testing::CommandResult;
using ember::testing::count_lines;
using ember::testing::error_of;
using ember::testing::read_text;
using ember::testing::TempDir;

namespace {

using ember::testing::run_app;

// A tiny effnet_tiny run on generated data: 72 training images in 4 batches per epoch.
const char* kQuick = " --model effnet_tiny --generated-size 96 --val-fraction 0.25 --batch 16 --workers 1"
                     " --threads 1 --head-epochs 1 --hold 0 --cooldown 0 --seed 5";

// root/<class>/<n>.png, 16x16 random pixels, `per_class` images of each class.
void write_image_folder(const std::string& root, const std::vector<std::string>& classes, int per_class) {
  uint64_t seed = 1;
  for (const std::string& c : classes)
    for (int i = 0; i < per_class; ++i) {
      fs::create_directories(root + "/" + c);
      ember::Tensor px = ember::testing::random_tensor({3, 16, 16}, ember::DType::f64, 0, 255, seed++).to(ember::DType::u8);
      ember::data::write_png(root + "/" + c + "/" + std::to_string(i) + ".png", px);
    }
}

// The checkpoint at `from` with metadata[key] = value (or the key removed when value is null).
void rewrite_metadata(const std::string& from, const std::string& to, const std::string& key, const char* value) {
  ember::nn::SafetensorsFile ck = ember::nn::load_safetensors(from);
  if (value)
    ck.metadata[key] = value;
  else
    ck.metadata.erase(key);
  ember::nn::save_safetensors(to, ck.tensors, ck.metadata);
}

}  // namespace

TEST(HostileInputs, PredictStridesByTheModelsClassCountAndRefusesDataWithMoreClasses) {
  TempDir dir("predict_classes");
  write_image_folder(dir / "three", {"a", "b", "c"}, 6);
  write_image_folder(dir / "two", {"a", "b"}, 6);  // the same files as three/a and three/b
  write_image_folder(dir / "four", {"a", "b", "c", "d"}, 2);
  const std::string run = dir / "run";
  CommandResult r = run_app("ember-effnet --model effnet_tiny --data " + (dir / "three") + " --out " + run +
                            " --val-fraction 0 --batch 6 --workers 1 --threads 1 --head-epochs 1 --warmup 0 --hold 0"
                            " --cooldown 0 --no-augment");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string ck = run + "/last.safetensors";
  r = run_app("ember-predict --checkpoint " + ck + " --data " + (dir / "three") + " --workers 1 --out " + (dir / "p3"));
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_app("ember-predict --checkpoint " + ck + " --data " + (dir / "two") + " --workers 1 --out " + (dir / "p2"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto p3 = ember::apps::read_predictions(dir / "p3/predictions.csv");
  auto p2 = ember::apps::read_predictions(dir / "p2/predictions.csv");
  ASSERT_EQ(p3.num_classes, 3);
  ASSERT_EQ(p2.num_classes, 3);  // the model's classes, not the data's
  ASSERT_EQ(p2.rows(), 12);
  // Each image of the two-class data gets the row it gets among the three classes.
  for (int64_t i = 0; i < p2.rows(); ++i) {
    ASSERT_EQ(p2.names[i], p3.names[i]);
    EXPECT_EQ(p2.labels[i], p3.labels[i]);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(p2.row(i)[c], p3.row(i)[c], 1e-6) << p2.names[i] << " p" << c;
  }
  r = run_app("ember-predict --checkpoint " + ck + " --data " + (dir / "four") + " --workers 1 --out " + (dir / "p4"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("the data has 4 classes but the model in '" + ck + "' has 3"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "p4/predictions.csv"));
}

TEST(HostileInputs, CheckpointMetadataIsCheckedAgainstTheSchemaNamingFileAndKey) {
  using ember::apps::CheckpointMeta;
  CheckpointMeta m("ck.safetensors", {{"epoch", "9223372036854775807"}, {"iteration", "12abc"},
                                      {"best_val_acc", "nan"}, {"rng_offset", "-1"}, {"num_classes", "0x10"},
                                      {"resolution", "224"}, {"model", "effnet_tiny"}, {"format", ""}});
  std::string e = error_of([&] { m.integer("epoch"); });
  EXPECT_NE(e.find("'ck.safetensors'"), std::string::npos) << e;
  EXPECT_NE(e.find("'epoch' = 9223372036854775807 is out of range [0, 1000000]"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { m.integer("iteration"); }).find("'iteration' = '12abc' is not an integer"), std::string::npos);
  EXPECT_NE(error_of([&] { m.real("best_val_acc"); }).find("'best_val_acc' = 'nan' is not a finite number"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m.unsigned_integer("rng_offset"); }).find("'rng_offset' = '-1'"), std::string::npos);
  EXPECT_NE(error_of([&] { m.integer("num_classes"); }).find("'num_classes' = '0x10'"), std::string::npos);
  EXPECT_NE(error_of([&] { m.text("format"); }).find("'format' is empty"), std::string::npos);
  e = error_of([&] { CheckpointMeta("x.safetensors", {}).integer("epoch"); });
  EXPECT_NE(e.find("'x.safetensors': no 'epoch'"), std::string::npos) << e;
  EXPECT_EQ(m.integer("resolution"), 224);
  EXPECT_EQ(m.text("model"), "effnet_tiny");
  EXPECT_EQ(CheckpointMeta("c", {{"rng_offset", "18446744073709551615"}}).unsigned_integer("rng_offset"), UINT64_MAX);
  EXPECT_EQ(CheckpointMeta("c", {{"best_val_acc", "-1.000000"}}).real("best_val_acc"), -1.0);
}

TEST(HostileInputs, ResumeAndPredictRefuseCraftedMetadataNamingFileAndKey) {
  TempDir dir("crafted");
  const std::string run = dir / "run";
  CommandResult r = run_app("ember-effnet" + std::string(kQuick) + " --warmup 0 --out " + run);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string ck = run + "/last.safetensors", bad = dir / "bad.safetensors";
  struct Case {
    const char* key;
    const char* value;
    const char* expected;
  };
  for (const Case& c : {Case{"epoch", "-5", "'epoch' = -5 is out of range"},
                        Case{"epoch", "10000000", "'epoch' = 10000000 is out of range"},
                        Case{"iteration", nullptr, "no 'iteration'"},
                        Case{"rng_offset", "lots", "'rng_offset' = 'lots'"},
                        Case{"best_val_acc", "2", "'best_val_acc' = 2 is out of range"}}) {
    SCOPED_TRACE(std::string(c.key) + " = " + (c.value ? c.value : "(none)"));
    rewrite_metadata(ck, bad, c.key, c.value);
    r = run_app("ember-effnet" + std::string(kQuick) + " --warmup 1 --out " + (dir / "resumed") + " --resume " + bad);
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("'" + bad + "'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
  }
  for (const Case& c : {Case{"num_classes", "twenty", "'num_classes' = 'twenty' is not an integer"},
                        Case{"num_classes", "2000000000", "'num_classes' = 2000000000 is out of range"},
                        Case{"resolution", nullptr, "no 'resolution'"}}) {
    SCOPED_TRACE(c.key);
    rewrite_metadata(ck, bad, c.key, c.value);
    r = run_app("ember-predict --checkpoint " + bad + " --generated-size 96 --workers 1 --out " + (dir / "p"));
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("'" + bad + "'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
  }
}

TEST(HostileInputs, ResumeRestoresTheEmaWeights) {
  // Two epochs straight vs one epoch, then --resume for the second: the same averaged weights.
  TempDir dir("ema_resume");
  const std::string a = dir / "straight", b = dir / "resumed";
  const std::string common = std::string(kQuick) + " --ema 0.9";
  CommandResult r = run_app("ember-effnet" + common + " --warmup 1 --out " + a);
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(run_app("ember-effnet" + common + " --warmup 0 --out " + b).code, 0);
  r = run_app("ember-effnet" + common + " --warmup 1 --out " + b + " --resume " + b + "/last.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  auto ea = ember::nn::load_safetensors(a + "/ema.safetensors"), eb = ember::nn::load_safetensors(b + "/ema.safetensors");
  ASSERT_EQ(ea.tensors.size(), eb.tensors.size());
  int compared = 0;
  for (size_t i = 0; i < ea.tensors.size(); ++i) {
    ASSERT_EQ(ea.tensors[i].first, eb.tensors[i].first);
    EXPECT_TRUE(ember::testing::all_close(eb.tensors[i].second, ea.tensors[i].second, 1e-6, 1e-7))
        << ea.tensors[i].first;
    compared += ea.tensors[i].first.find("weight") != std::string::npos;
  }
  EXPECT_GT(compared, 10);
  // The checkpoint carries the averaged weights next to the model.
  auto ck = ember::nn::load_safetensors(b + "/last.safetensors");
  int ema_entries = 0;
  for (auto& [name, t] : ck.tensors) ema_entries += name.rfind("ema.", 0) == 0;
  EXPECT_EQ(static_cast<size_t>(ema_entries), ea.tensors.size());
}

TEST(HostileInputs, AKilledRunsTempFilesGoAndAResumedRunDoesNotRepeatEpochRows) {
  TempDir dir("killed");
  const std::string run = dir / "run";
  CommandResult r = run_app("ember-effnet" + std::string(kQuick) + " --warmup 0 --out " + run);
  ASSERT_EQ(r.code, 0) << r.output;
  // As if killed after writing epoch 2's metrics rows but before its checkpoint, and mid-write
  // of a checkpoint by a process that is gone (pid above any pid_max); the temp file of a live
  // process (this test) and an unrelated file stay.
  std::ofstream(run + "/metrics.csv", std::ios::app) << "2,warmup,0.001,9,0,9,0,1,1\n";
  std::ofstream(run + "/metrics.jsonl", std::ios::app) << "{\"epoch\": 2, \"phase\": \"stale\"}\n";
  const std::string dead = run + "/last.safetensors.tmp.999999999",
                    live = run + "/best.safetensors.tmp." + std::to_string(::getpid()), other = run + "/notes.tmp.txt";
  for (const std::string& f : {dead, live, other}) std::ofstream(f) << "partial";
  r = run_app("ember-effnet" + std::string(kQuick) + " --warmup 1 --out " + run + " --resume " + run +
              "/last.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(dead)) << r.output;
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  const std::string csv = read_text(run + "/metrics.csv"), jsonl = read_text(run + "/metrics.jsonl");
  EXPECT_EQ(count_lines(csv), 3) << csv;  // header, epoch 1, epoch 2 once
  EXPECT_EQ(csv.find("\n2,warmup,0.001,9,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n1,head,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n2,warmup,"), std::string::npos) << csv;
  EXPECT_EQ(count_lines(jsonl), 2) << jsonl;
  EXPECT_EQ(jsonl.find("stale"), std::string::npos) << jsonl;
}

TEST(HostileInputs, SkipBadTrainsWhenTheFirstImageIsBadAndAnEmptyValidationSplitIsAnError) {
  TempDir dir("skip_bad");
  write_image_folder(dir / "data", {"a", "b"}, 6);
  // The first image (a/0.png) becomes a truncated JPEG: its header reads, its pixels do not.
  ember::Tensor px = ember::testing::random_tensor({3, 16, 16}, ember::DType::f64, 0, 255, 99).to(ember::DType::u8);
  std::vector<uint8_t> jpg = ember::testing::truncate_jpeg_scan(ember::data::encode_jpeg(px));
  fs::remove(dir / "data/a/0.png");
  ember::data::write_file_bytes(dir / "data/a/0.jpg", jpg);
  const std::string flags = " --model effnet_tiny --batch 4 --workers 1 --threads 1 --head-epochs 1 --warmup 0"
                            " --hold 0 --cooldown 0 --no-augment --skip-bad";
  CommandResult r = run_app("ember-effnet --data " + (dir / "data") + " --val-fraction 0 --out " + (dir / "r1") + flags);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("0.jpg"), std::string::npos) << r.output;  // the warning names it

  // 6 images per class at 5%: nothing held out.
  r = run_app("ember-effnet --data " + (dir / "data") + " --val-fraction 0.05 --out " + (dir / "r2") + flags);
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--val-fraction 0.05 holds out no image"), std::string::npos) << r.output;
}

TEST(HostileInputs, NonFiniteFlagValuesAreRefusedNamingTheFlag) {
  for (const char* flag : {"--lr", "--head-lr", "--final-lr", "--dropout", "--drop-path", "--mixup", "--cutmix",
                           "--sam", "--clip-grad", "--ema", "--weight-decay", "--momentum", "--label-smoothing",
                           "--warmup", "--head-epochs", "--hold", "--cooldown", "--val-fraction", "--bn-momentum"}) {
    for (const char* value : {"nan", "inf", "-inf"}) {
      SCOPED_TRACE(std::string(flag) + " " + value);
      CommandResult r = run_app(std::string("ember-effnet --generated-size 20 --out /nonexistent/x ") + flag + " " + value);
      EXPECT_NE(r.code, 0) << r.output;
      EXPECT_NE(r.output.find(std::string(flag) + ": '" + value + "' is not a finite number"), std::string::npos)
          << r.output;
    }
  }
  CommandResult r = run_app("ember-predict --checkpoint /etc/hostname --val-fraction nan");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--val-fraction: 'nan' is not a finite number"), std::string::npos) << r.output;
  r = run_app("ember-ensemble /etc/hostname /etc/hostname --weights 1 nan");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--weights: 'nan' is not a finite number"), std::string::npos) << r.output;
}

TEST(HostileInputs, PredictionCsvFieldsAreParsedWhole) {
  TempDir dir("csv");
  auto error_reading = [&](const std::string& body) {
    std::ofstream(dir / "p.csv") << "file_name,label,p0,p1\na.png,0,0.25,0.75\n" << body;
    return error_of([&] { ember::apps::read_predictions(dir / "p.csv"); });
  };
  for (const char* row : {"b.png,0x1,0.5,0.5\n", "b.png,1abc,0.5,0.5\n", "b.png, 1,0.5,0.5\n", "b.png,2,0.5,0.5\n",
                          "b.png,-2,0.5,0.5\n"}) {
    std::string e = error_reading(row);
    EXPECT_NE(e.find("line 3: label"), std::string::npos) << row << ": " << e;
  }
  for (const char* row : {"b.png,1,0.5abc,0.5\n", "b.png,1,0.5,0x0.8\n", "b.png,1,,1\n", "b.png,1,nan,1\n"}) {
    std::string e = error_reading(row);
    EXPECT_NE(e.find("line 3: probability"), std::string::npos) << row << ": " << e;
  }
  EXPECT_EQ(error_reading("b.png,-1,5e-1,0.5\n"), "no error");
}
