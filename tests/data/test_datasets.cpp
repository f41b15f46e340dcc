// Datasets and image decoding on fixture files the tests write: CIFAR binary records, PNGs from a
// hand-written encoder, JPEGs from libjpeg, a competition TSV; bad files; splits.
#include <cmath>
#include <set>

#include "data/dataset.h"
#include "data/image_io.h"
#include "tests/data/fixtures.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::data;
using ember::testing::TempDir;
namespace fx = ember::testing;

namespace {

// Expects an Error whose message contains every piece.
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& pieces) {
  try {
    fn();
    ADD_FAILURE() << "expected an ember::Error";
  } catch (const Error& e) {
    for (const std::string& p : pieces) EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
        << "message '" << e.what() << "' lacks '" << p << "'";
  }
}

// (3, H, W) tensor pixel vs interleaved (H, W, C) reference.
uint8_t chw(const std::vector<uint8_t>& v, int64_t h, int64_t w, int64_t c, int64_t y, int64_t x) {
  return v[(c * h + y) * w + x];
}

}  // namespace

// ---- decoding ---------------------------------------------------------------------------------

TEST(ImageIO, PngColorTypesDecodeExactlyToRgb) {
  const int h = 5, w = 7;
  struct Case {
    int color_type, bit_depth, channels;
  };
  for (Case cs : {Case{2, 8, 3}, Case{0, 8, 1}, Case{4, 8, 2}, Case{6, 8, 4}, Case{2, 16, 3}, Case{6, 16, 4}}) {
    SCOPED_TRACE("color type " + std::to_string(cs.color_type) + " depth " + std::to_string(cs.bit_depth));
    auto px = fx::random_pixels(h, w, cs.channels, 10 + cs.color_type);
    auto png = fx::make_png(px, w, h, cs.color_type, cs.bit_depth);
    Tensor img = decode_image(png.data(), png.size(), "fixture.png");
    ASSERT_EQ(img.shape(), (Shape{3, h, w}));
    ASSERT_EQ(img.dtype(), DType::u8);
    auto got = img.to_vector<uint8_t>();
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          // gray (+alpha): every channel is the gray sample; RGB(A): channel c; alpha dropped
          int src = cs.channels <= 2 ? 0 : c;
          ASSERT_EQ(chw(got, h, w, c, y, x), px[(y * w + x) * cs.channels + src]) << "at " << y << "," << x;
        }
  }
}

TEST(ImageIO, PalettePngExpandsThroughThePalette) {
  const int h = 3, w = 4;
  std::vector<uint8_t> palette = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
  std::vector<uint8_t> idx = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 3, 0};
  auto png = fx::make_png(idx, w, h, 3, 8, palette);
  auto got = decode_png(png.data(), png.size(), "pal.png").to_vector<uint8_t>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(chw(got, h, w, c, y, x), palette[idx[y * w + x] * 3 + c]);
}

TEST(ImageIO, JpegFromLibjpegDecodesWithinTolerance) {
  const int h = 16, w = 24;
  auto px = fx::smooth_pixels(h, w, 3);
  auto jpg = fx::make_jpeg(px, w, h, 3, 95);
  Tensor img = decode_image(jpg.data(), jpg.size(), "smooth.jpg");
  ASSERT_EQ(img.shape(), (Shape{3, h, w}));
  auto got = img.to_vector<uint8_t>();
  double max_err = 0, mean_err = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        double e = std::abs(double(chw(got, h, w, c, y, x)) - px[(y * w + x) * 3 + c]);
        max_err = std::max(max_err, e);
        mean_err += e / (h * w * 3);
      }
  EXPECT_LE(max_err, 12.0);
  EXPECT_LE(mean_err, 2.0);

  // grayscale JPEG -> R = G = B close to the gray value
  auto gray = fx::random_pixels(8, 8, 1, 5);
  for (auto& v : gray) v = static_cast<uint8_t>(100 + v / 8);
  auto gj = fx::make_jpeg(gray, 8, 8, 1, 100);
  auto g = decode_jpeg(gj.data(), gj.size(), "gray.jpg").to_vector<uint8_t>();
  for (int p = 0; p < 64; ++p) {
    EXPECT_EQ(g[p], g[64 + p]);
    EXPECT_EQ(g[p], g[128 + p]);
    EXPECT_NEAR(g[p], gray[p], 4);
  }
}

TEST(ImageIO, EncodersRoundTrip) {
  Tensor img = from_vector<uint8_t>(fx::random_pixels(3, 9, 11, 8), {3, 9, 11});
  auto png = encode_png(img);
  EXPECT_EQ(sniff_image_format(png.data(), png.size()), ImageFormat::png);
  EXPECT_EQ(decode_image(png.data(), png.size(), "x").to_vector<uint8_t>(), img.to_vector<uint8_t>());
  // JPEG: a smooth image stays within a few levels; channel order preserved
  auto smooth = fx::smooth_pixels(12, 10, 9);
  Tensor s = empty({3, 12, 10}, DType::u8);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 120; ++p) s.data<uint8_t>()[c * 120 + p] = smooth[p * 3 + c];
  auto jpg = encode_jpeg(s, 95);
  EXPECT_EQ(sniff_image_format(jpg.data(), jpg.size()), ImageFormat::jpeg);
  auto back = decode_image(jpg.data(), jpg.size(), "x").to_vector<uint8_t>();
  auto ref = s.to_vector<uint8_t>();
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(back[i], ref[i], 12);
  expect_error([&] { encode_jpeg(empty({2, 4, 4}, DType::u8)); }, {"encode_jpeg", "[2, 4, 4]"});
  expect_error([&] { encode_png(empty({3, 4, 4}, DType::f32)); }, {"encode_png", "u8"});
}

TEST(ImageIO, CorruptAndTruncatedFilesThrowNamingTheFile) {
  TempDir dir("io");
  auto jpg = fx::make_jpeg(fx::smooth_pixels(32, 32, 1), 32, 32, 3);
  auto png = fx::make_png(fx::random_pixels(32, 32, 3, 2), 32, 32, 2);
  fx::write_bytes(dir / "half.jpg", fx::truncate_jpeg_scan(jpg));
  fx::write_bytes(dir / "half.png", std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2));
  auto bad_crc = png;
  bad_crc[bad_crc.size() - 30] ^= 0x55;  // inside IDAT: the CRC no longer matches
  fx::write_bytes(dir / "crc.png", bad_crc);
  fx::write_bytes(dir / "text.jpg", {'h', 'e', 'l', 'l', 'o'});
  fx::write_bytes(dir / "empty.png", {});
  for (const char* name : {"half.jpg", "half.png", "crc.png", "text.jpg", "empty.png"}) {
    SCOPED_TRACE(name);
    expect_error([&] { read_image(dir / name); }, {dir / name});
  }
  expect_error([&] { read_image(dir / "missing.png"); }, {"cannot open", dir / "missing.png"});
  // the header alone is still readable for the truncated JPEG
  auto half = fx::read_bytes(dir / "half.jpg");
  ImageInfo info = read_image_info(half.data(), half.size(), "half.jpg");
  EXPECT_EQ(info.format, ImageFormat::jpeg);
  EXPECT_EQ(info.width, 32);
  EXPECT_EQ(info.channels, 3);
}

namespace {
// A valid PNG's chunks with the IHDR claiming w x h (CRC recomputed: libpng checks it).
std::vector<uint8_t> png_claiming(uint32_t w, uint32_t h) {
  std::vector<uint8_t> small = fx::make_png(fx::random_pixels(2, 2, 3, 5), 2, 2, 2);
  std::vector<uint8_t> out(small.begin(), small.begin() + 8), ihdr;
  fx::put_u32(ihdr, w);
  fx::put_u32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  fx::png_chunk(out, "IHDR", ihdr);
  out.insert(out.end(), small.begin() + 8 + 25, small.end());  // IDAT, IEND after the 25-byte IHDR chunk
  return out;
}
// A valid JPEG with its SOF marker's height and width replaced (no checksum in JPEG).
std::vector<uint8_t> jpeg_claiming(uint16_t w, uint16_t h) {
  std::vector<uint8_t> jpg = fx::make_jpeg(fx::smooth_pixels(16, 16, 3), 16, 16, 3);
  for (size_t i = 2; i + 9 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC1 || jpg[i + 1] == 0xC2)) {
      jpg[i + 5] = static_cast<uint8_t>(h >> 8);
      jpg[i + 6] = static_cast<uint8_t>(h);
      jpg[i + 7] = static_cast<uint8_t>(w >> 8);
      jpg[i + 8] = static_cast<uint8_t>(w);
      return jpg;
    }
  ADD_FAILURE() << "no SOF marker in the fixture JPEG";
  return jpg;
}
// Sets an environment variable for one scope.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  const char* name_;
};
}  // namespace

TEST(ImageIO, HeadersClaimingHugeOrImplausibleSizesAreRejectedBeforeDecoding) {
  EXPECT_EQ(max_image_pixels(), kDefaultMaxImagePixels);
  // over the pixel limit: 16384x16384 (268M pixels) in a tiny file
  // (no structured bindings: clang 14 cannot capture them in the lambdas below)
  for (const auto& file : {std::pair{std::string("huge.png"), png_claiming(16384, 16384)},
                           std::pair{std::string("huge.jpg"), jpeg_claiming(16384, 16384)}}) {
    const std::string& name = file.first;
    const std::vector<uint8_t>& bytes = file.second;
    SCOPED_TRACE(name);
    EXPECT_LT(bytes.size(), 2000u);
    expect_error([&] { decode_image(bytes.data(), bytes.size(), name); },
                 {name, "16384x16384", "over the limit of 67108864 pixels", "EMBER_MAX_IMAGE_PIXELS"});
    expect_error([&] { read_image_info(bytes.data(), bytes.size(), name); }, {name, "16384x16384"});
  }
  // under the limit but more than the file could hold: 4000x4000 in under 2 KB
  for (const auto& file : {std::pair{std::string("big.png"), png_claiming(4000, 4000)},
                           std::pair{std::string("big.jpg"), jpeg_claiming(4000, 4000)}}) {
    const std::string& name = file.first;
    const std::vector<uint8_t>& bytes = file.second;
    SCOPED_TRACE(name);
    expect_error([&] { decode_image(bytes.data(), bytes.size(), name); },
                 {name, "implausible image size 4000x4000", std::to_string(bytes.size()) + "-byte file"});
  }
  // the limit is configurable; real images under it decode
  auto png = fx::make_png(fx::random_pixels(32, 32, 3, 2), 32, 32, 2);
  auto jpg = fx::make_jpeg(fx::smooth_pixels(32, 32, 1), 32, 32, 3);
  EXPECT_EQ(decode_image(png.data(), png.size(), "ok.png").shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(decode_image(jpg.data(), jpg.size(), "ok.jpg").shape(), (Shape{3, 32, 32}));
  {
    ScopedEnv env("EMBER_MAX_IMAGE_PIXELS", "1000");
    expect_error([&] { decode_image(png.data(), png.size(), "ok.png"); }, {"ok.png", "32x32", "limit of 1000 pixels"});
    expect_error([&] { decode_image(jpg.data(), jpg.size(), "ok.jpg"); }, {"ok.jpg", "32x32", "limit of 1000 pixels"});
  }
  {
    ScopedEnv env("EMBER_MAX_IMAGE_PIXELS", "lots");
    expect_error([&] { decode_image(png.data(), png.size(), "ok.png"); }, {"EMBER_MAX_IMAGE_PIXELS", "'lots'"});
  }
  // a solid-colour image compresses far but stays within the bounds
  std::vector<uint8_t> flat(256 * 256 * 3, 200);
  auto flat_png = fx::make_png(flat, 256, 256, 2);
  auto flat_jpg = fx::make_jpeg(flat, 256, 256, 3, 50);
  EXPECT_EQ(decode_image(flat_png.data(), flat_png.size(), "flat.png").size(2), 256);
  EXPECT_EQ(decode_image(flat_jpg.data(), flat_jpg.size(), "flat.jpg").size(2), 256);
}

// ---- CIFAR binary -----------------------------------------------------------------------------

TEST(CifarBinaryDataset, Cifar10DirectoryFileAndTestSplit) {
  TempDir dir("cifar10");
  auto b1 = fx::random_cifar_records(5, 1, 1), b2 = fx::random_cifar_records(3, 1, 2),
       tb = fx::random_cifar_records(4, 1, 3);
  fx::write_cifar(dir / "data_batch_1.bin", b1);
  fx::write_cifar(dir / "data_batch_2.bin", b2);
  fx::write_cifar(dir / "test_batch.bin", tb);
  std::vector<fx::CifarRecord> all = b1;
  all.insert(all.end(), b2.begin(), b2.end());

  CifarBinaryDataset train(dir.str());
  ASSERT_EQ(train.size(), 8);
  EXPECT_FALSE(train.is_cifar100());
  EXPECT_EQ(train.num_classes(), 10);
  EXPECT_EQ(train.class_names()[0], "airplane");
  EXPECT_EQ(train.class_names()[9], "truck");
  for (int64_t i = 0; i < 8; ++i) {
    Sample s = train.get(i);
    EXPECT_EQ(s.label, all[i].labels[0]);
    EXPECT_EQ(train.label(i), all[i].labels[0]);
    EXPECT_EQ(s.image.shape(), (Shape{3, 32, 32}));
    EXPECT_EQ(s.image.to_vector<uint8_t>(), all[i].pixels);  // R, G, B planes as stored
  }
  EXPECT_EQ(train.get(6).name, "data_batch_2.bin#1");

  CifarBinaryDataset test(dir.str(), CifarSplit::test);
  ASSERT_EQ(test.size(), 4);
  EXPECT_EQ(test.get(3).image.to_vector<uint8_t>(), tb[3].pixels);

  CifarBinaryDataset one(dir / "data_batch_2.bin");
  ASSERT_EQ(one.size(), 3);
  EXPECT_EQ(one.get(2).label, b2[2].labels[0]);
  EXPECT_THROW(one.get(3), Error);
}

TEST(CifarBinaryDataset, Cifar100CoarseAndFineLabels) {
  TempDir dir("cifar100");
  auto recs = fx::random_cifar_records(6, 2, 4);
  fx::write_cifar(dir / "train.bin", recs);
  CifarBinaryDataset fine(dir.str(), CifarSplit::train, Cifar100Labels::fine);
  CifarBinaryDataset coarse(dir / "train.bin", CifarSplit::train, Cifar100Labels::coarse);
  EXPECT_TRUE(fine.is_cifar100());
  EXPECT_EQ(fine.num_classes(), 100);
  EXPECT_EQ(coarse.num_classes(), 20);
  EXPECT_EQ(fine.class_names()[99], "worm");
  EXPECT_EQ(coarse.class_names()[19], "vehicles_2");
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(coarse.get(i).label, recs[i].labels[0]);
    EXPECT_EQ(fine.get(i).label, recs[i].labels[1]);
    EXPECT_EQ(fine.get(i).image.to_vector<uint8_t>(), recs[i].pixels);
  }
}

TEST(CifarBinaryDataset, BadFilesThrowNamingTheFile) {
  TempDir dir("cifarbad");
  auto recs = fx::random_cifar_records(2, 1, 5);
  fx::write_cifar(dir / "data_batch_1.bin", recs);
  auto bytes = fx::read_bytes(dir / "data_batch_1.bin");
  bytes.pop_back();
  fx::write_bytes(dir / "data_batch_1.bin", bytes);
  expect_error([&] { CifarBinaryDataset d(dir.str()); }, {"data_batch_1.bin", "not a multiple", "3073"});
  recs[1].labels[0] = 10;  // no such CIFAR-10 class
  fx::write_cifar(dir / "data_batch_1.bin", recs);
  expect_error([&] { CifarBinaryDataset d(dir.str()); }, {"data_batch_1.bin", "record 1", "label 10"});
  TempDir empty_dir("cifarempty");
  expect_error([&] { CifarBinaryDataset d(empty_dir.str()); }, {"no training files", "data_batch_1..5.bin"});
}

// ---- image folders ----------------------------------------------------------------------------

namespace {
// root/bird/{0.png,1.jpg}, root/cat/{a.png}, root/dog/{b.png, c.PNG, notes.txt}
struct Folder {
  TempDir dir{"folder"};
  std::vector<std::vector<uint8_t>> png_pixels;  // (H, W, 3) of the PNGs in dataset order
  Folder() {
    dir.mkdir("root/bird");
    dir.mkdir("root/cat");
    dir.mkdir("root/dog");
    dir.mkdir("root/.hidden");
    auto add_png = [&](const std::string& rel, int seed) {
      auto px = fx::random_pixels(6, 5, 3, seed);
      fx::write_bytes(dir / rel, fx::make_png(px, 5, 6, 2));
      png_pixels.push_back(px);
    };
    add_png("root/bird/0.png", 1);
    fx::write_bytes(dir / "root/bird/1.jpg", fx::make_jpeg(fx::smooth_pixels(6, 5, 2), 5, 6, 3));
    add_png("root/cat/a.png", 3);
    add_png("root/dog/b.png", 4);
    add_png("root/dog/c.PNG", 5);
    fx::write_bytes(dir / "root/dog/notes.txt", {'x'});
    fx::write_bytes(dir / "root/.hidden/z.png", {'x'});
  }
};
}  // namespace

TEST(ImageFolderDataset, ClassesSortedLabelsAndPixels) {
  Folder f;
  ImageFolderDataset ds(f.dir / "root");
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"bird", "cat", "dog"}));
  ASSERT_EQ(ds.size(), 5);
  std::vector<std::string> names;
  for (int64_t i = 0; i < ds.size(); ++i) names.push_back(ds.get(i).name);
  EXPECT_EQ(names, (std::vector<std::string>{"bird/0.png", "bird/1.jpg", "cat/a.png", "dog/b.png", "dog/c.PNG"}));
  std::vector<int64_t> labels = {0, 0, 1, 2, 2};
  int png = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    Sample s = ds.get(i);
    EXPECT_EQ(s.label, labels[i]);
    EXPECT_EQ(ds.label(i), labels[i]);
    ASSERT_EQ(s.image.shape(), (Shape{3, 6, 5}));
    if (i == 1) continue;  // the JPEG
    auto got = s.image.to_vector<uint8_t>();
    const auto& px = f.png_pixels[png++];
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x)
        for (int c = 0; c < 3; ++c) ASSERT_EQ(chw(got, 6, 5, c, y, x), px[(y * 5 + x) * 3 + c]);
  }
  expect_error([&] { ImageFolderDataset d(f.dir / "nope"); }, {"nope", "not a directory"});
  expect_error([&] { ImageFolderDataset d(f.dir / "root/cat"); }, {"no class sub-folders"});
}

TEST(ImageFolderDataset, CorruptImageThrowsNamingFileAndSkipBadLeavesItOut) {
  Folder f;
  auto jpg = fx::make_jpeg(fx::smooth_pixels(32, 32, 1), 32, 32, 3);
  // not an image at all (dropped at scan with skip_bad) and a truncated JPEG (dropped at first touch)
  fx::write_bytes(f.dir / "root/cat/garbage.jpg", {'n', 'o', 'p', 'e', 0, 1, 2});
  fx::write_bytes(f.dir / "root/cat/trunc.jpg", fx::truncate_jpeg_scan(jpg));

  ImageFolderDataset strict(f.dir / "root");
  ASSERT_EQ(strict.size(), 7);
  expect_error([&] { strict.get(3); }, {"garbage.jpg"});  // cat/a.png, cat/garbage.jpg, cat/trunc.jpg
  expect_error([&] { strict.get(4); }, {"trunc.jpg", "Premature end"});

  ::testing::internal::CaptureStderr();
  ImageFolderDataset lenient(f.dir / "root", {.skip_bad = true});
  EXPECT_EQ(lenient.bad_count(), 1);
  ASSERT_EQ(lenient.size(), 6);
  EXPECT_EQ(lenient.get(3).name, "cat/trunc.jpg");
  EXPECT_FALSE(lenient.get(3).ok());  // touched twice, counted and warned once
  EXPECT_EQ(lenient.bad_count(), 2);
  EXPECT_TRUE(lenient.get(2).ok());
  std::string err = ::testing::internal::GetCapturedStderr();
  auto lines_with = [&](const std::string& what) {
    size_t n = 0, start = 0;
    for (size_t end; (end = err.find('\n', start)) != std::string::npos; start = end + 1)
      if (err.substr(start, end - start).find(what) != std::string::npos) ++n;
    return n;
  };
  EXPECT_EQ(lines_with("warning"), 2u) << err;
  EXPECT_EQ(lines_with("garbage.jpg"), 1u) << err;
  EXPECT_EQ(lines_with("trunc.jpg"), 1u) << err;
}

// ---- competition layout -------------------------------------------------------------------------

TEST(CompetitionDataset, TsvColumnsLabelsAndErrors) {
  TempDir dir("comp");
  const std::string images = dir.mkdir("train");
  std::vector<std::vector<uint8_t>> px;
  for (int i = 0; i < 3; ++i) {
    px.push_back(fx::random_pixels(4, 4, 3, 20 + i));
    fx::write_bytes(images + "/train_" + std::to_string(i) + ".png", fx::make_png(px.back(), 4, 4, 2));
  }
  // columns in another order, an extra column, Windows line ends
  fx::write_bytes(dir / "train_master.tsv", {});
  {
    std::ofstream t(dir / "train_master.tsv");
    t << "label_id\tfile_name\tsource\r\n7\ttrain_2.png\tx\r\n0\ttrain_0.png\ty\r\n3\ttrain_1.png\tz\r\n\r\n";
  }
  CompetitionDataset ds(images, dir / "train_master.tsv");
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.num_classes(), 8);
  EXPECT_EQ(ds.get(0).name, "train_2.png");
  EXPECT_EQ(ds.get(0).label, 7);
  EXPECT_EQ(ds.get(1).label, 0);
  EXPECT_EQ(ds.get(2).label, 3);
  auto got = ds.get(1).image.to_vector<uint8_t>();
  for (int p = 0; p < 16; ++p)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(got[c * 16 + p], px[0][p * 3 + c]);
  EXPECT_EQ(CompetitionDataset(images, dir / "train_master.tsv", {}, 20).num_classes(), 20);

  auto write_tsv = [&](const std::string& text) {
    std::ofstream t(dir / "bad.tsv");
    t << text;
  };
  write_tsv("file_name\tlabel\ntrain_0.png\t1\n");
  expect_error([&] { CompetitionDataset d(images, dir / "bad.tsv"); }, {"bad.tsv", "line 1", "label_id", "'label'"});
  write_tsv("file_name\tlabel_id\ntrain_0.png\t1\ntrain_9.png\t2\n");
  expect_error([&] { CompetitionDataset d(images, dir / "bad.tsv"); }, {"bad.tsv", "line 3", "train_9.png"});
  write_tsv("file_name\tlabel_id\ntrain_0.png\tcat\n");
  expect_error([&] { CompetitionDataset d(images, dir / "bad.tsv"); }, {"bad.tsv", "line 2", "'cat'"});
  write_tsv("file_name\tlabel_id\ntrain_0.png\n");
  expect_error([&] { CompetitionDataset d(images, dir / "bad.tsv"); }, {"bad.tsv", "line 2", "fields"});

  auto test_set = CompetitionDataset::unlabeled(images, 20);
  ASSERT_EQ(test_set->size(), 3);
  EXPECT_EQ(test_set->get(0).name, "train_0.png");
  EXPECT_EQ(test_set->get(0).label, -1);
}

TEST(CompetitionDataset, HugeLabelIdsAndPathsOutsideTheImageFolderAreErrorsNamingTheLine) {
  TempDir dir("comp_hostile");
  const std::string images = dir.mkdir("train");
  auto png = fx::make_png(fx::random_pixels(4, 4, 3, 30), 4, 4, 2);
  fx::write_bytes(images + "/a.png", png);
  fx::write_bytes(dir / "secret.png", png);  // beside the image folder, not in it
  auto write_tsv = [&](const std::string& text) {
    std::ofstream t(dir / "hostile.tsv");
    t << text;
  };
  // the largest label allowed, then one past it, 2e9 and INT64_MAX
  write_tsv("file_name\tlabel_id\na.png\t99999\n");
  EXPECT_EQ(CompetitionDataset(images, dir / "hostile.tsv").num_classes(), CompetitionDataset::kMaxClasses);
  for (const char* label : {"100000", "2000000000", "9223372036854775807"}) {
    SCOPED_TRACE(label);
    write_tsv(std::string("file_name\tlabel_id\na.png\t0\na.png\t") + label + "\n");
    expect_error([&] { CompetitionDataset d(images, dir / "hostile.tsv"); },
                 {"hostile.tsv", "line 3", label, "100000 classes"});
  }
  const std::string absolute = dir / "secret.png";
  for (const std::string& name : {std::string("../secret.png"), std::string("sub/../../secret.png"), absolute}) {
    SCOPED_TRACE(name);
    write_tsv("file_name\tlabel_id\na.png\t0\n" + name + "\t1\n");
    expect_error([&] { CompetitionDataset d(images, dir / "hostile.tsv"); },
                 {"hostile.tsv", "line 3", "'" + name + "'", "absolute or contains '..'"});
  }
  // a name that merely contains two dots is an ordinary file name
  fx::write_bytes(images + "/b..png", png);
  write_tsv("file_name\tlabel_id\nb..png\t1\n");
  EXPECT_EQ(CompetitionDataset(images, dir / "hostile.tsv").size(), 1);
}

// ---- generated ------------------------------------------------------------------------------------

TEST(GeneratedDataset, DeterministicBalancedAndVaried) {
  GeneratedDataset a(40, 20, 32, 7), b(40, 20, 32, 7), other(40, 20, 32, 8);
  EXPECT_EQ(a.size(), 40);
  EXPECT_EQ(a.num_classes(), 20);
  auto names = a.class_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 20u);
  for (int64_t i = 0; i < 40; ++i) {
    Sample s = a.get(i);
    EXPECT_EQ(s.label, i % 20);
    ASSERT_EQ(s.image.shape(), (Shape{3, 32, 32}));
    EXPECT_EQ(s.image.to_vector<uint8_t>(), b.get(i).image.to_vector<uint8_t>());
    EXPECT_NE(s.image.to_vector<uint8_t>(), other.get(i).image.to_vector<uint8_t>());
  }
  // two samples of one class differ (random position, scale, colour, noise), and pixels spread
  auto p0 = a.get(3).image.to_vector<uint8_t>(), p1 = a.get(23).image.to_vector<uint8_t>();
  EXPECT_NE(p0, p1);
  auto [lo, hi] = std::minmax_element(p0.begin(), p0.end());
  EXPECT_GT(*hi - *lo, 100);
  EXPECT_EQ(GeneratedDataset(3, 5, 48, 0).get(2).image.shape(), (Shape{3, 48, 48}));
  expect_error([] { GeneratedDataset d(10, 1); }, {"num_classes", "[2, 120]"});
}

// ---- splits -------------------------------------------------------------------------------------

TEST(Split, SizesDisjointDeterministicAndStratified) {
  auto ds = std::make_shared<GeneratedDataset>(103, 10, 8, 0);  // 3 classes with 11, 7 with 10
  for (bool stratified : {true, false}) {
    SCOPED_TRACE(stratified ? "stratified" : "plain");
    auto s = split(ds, 0.2, 42, stratified);
    auto again = split(ds, 0.2, 42, stratified);
    auto other = split(ds, 0.2, 43, stratified);
    EXPECT_EQ(s.train->indices(), again.train->indices());
    EXPECT_EQ(s.val->indices(), again.val->indices());
    EXPECT_NE(s.val->indices(), other.val->indices());
    EXPECT_EQ(s.train->size() + s.val->size(), 103);
    std::set<int64_t> all(s.train->indices().begin(), s.train->indices().end());
    for (int64_t i : s.val->indices()) EXPECT_TRUE(all.insert(i).second) << "index " << i << " in both";
    EXPECT_EQ(all.size(), 103u);
    EXPECT_TRUE(std::is_sorted(s.val->indices().begin(), s.val->indices().end()));
    if (stratified) {
      // round(0.2 · 11) = 2 for classes 0..2, round(0.2 · 10) = 2 for the rest
      std::vector<int> per_class(10, 0);
      for (int64_t i = 0; i < s.val->size(); ++i) per_class[s.val->label(i)]++;
      for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 2) << "class " << c;
    } else {
      EXPECT_EQ(s.val->size(), 21);  // round(0.2 · 103)
    }
    // a subset hands out the base's samples
    EXPECT_EQ(s.val->get(0).name, ds->get(s.val->indices()[0]).name);
    EXPECT_EQ(s.val->num_classes(), 10);
  }
  EXPECT_EQ(split(ds, 0.0, 1).val->size(), 0);
  EXPECT_EQ(split(ds, 1.0, 1).train->size(), 0);
  expect_error([&] { split(ds, 1.5, 1); }, {"split", "val_fraction", "1.5"});
}
