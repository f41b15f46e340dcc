// Fixture files for the data tests, written independently of ember's own encoders: PNGs by a
// plain encoder here (stored deflate blocks, CRC-32 and Adler-32 by hand), JPEGs by calling
// libjpeg directly, CIFAR records byte by byte. All go into a temporary folder removed at the end.
#pragma once
#include <jpeglib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/rng.h"

namespace ember::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("ember_data_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }
  std::string mkdir(const std::string& rel) const {
    std::filesystem::create_directories(path_ / rel);
    return (path_ / rel).string();
  }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Interleaved (H, W, C) bytes of a random image.
inline std::vector<uint8_t> random_pixels(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  data::Rng rng(seed, 77);
  std::vector<uint8_t> px(static_cast<size_t>(h * w * c));
  for (auto& v : px) v = static_cast<uint8_t>(rng.uniform_int(256));
  return px;
}

// Interleaved (H, W, 3) of a smooth image (JPEG keeps those within a few levels).
inline std::vector<uint8_t> smooth_pixels(int64_t h, int64_t w, uint64_t seed) {
  data::Rng rng(seed, 78);
  double a = rng.uniform(40, 200), b = rng.uniform(40, 200), c = rng.uniform(40, 200);
  std::vector<uint8_t> px(static_cast<size_t>(h * w * 3));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      px[(y * w + x) * 3 + 0] = static_cast<uint8_t>(a + 40.0 * x / w);
      px[(y * w + x) * 3 + 1] = static_cast<uint8_t>(b + 40.0 * y / h);
      px[(y * w + x) * 3 + 2] = static_cast<uint8_t>(c - 30.0 * (x + y) / (w + h));
    }
  return px;
}

// ---- PNG, by hand ------------------------------------------------------------------------------

inline uint32_t crc32_bytes(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

inline void png_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& body) {
  put_u32(out, static_cast<uint32_t>(body.size()));
  std::vector<uint8_t> typed(type, type + 4);
  typed.insert(typed.end(), body.begin(), body.end());
  out.insert(out.end(), typed.begin(), typed.end());
  put_u32(out, crc32_bytes(typed.data(), typed.size()));
}

// A PNG of `samples`: (H, W, channels) samples of `bit_depth` 8 or 16 (16-bit samples are given
// as 8-bit values v and stored as v·257 + 1, so the high byte is v), color type per PNG spec
// (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA). No filtering, stored deflate blocks.
inline std::vector<uint8_t> make_png(const std::vector<uint8_t>& samples, uint32_t w, uint32_t h, int color_type,
                                     int bit_depth = 8, const std::vector<uint8_t>& palette_rgb = {}) {
  const int channels = color_type == 0 ? 1 : color_type == 2 ? 3 : color_type == 3 ? 1 : color_type == 4 ? 2 : 4;
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32(ihdr, w);
  put_u32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
  png_chunk(out, "IHDR", ihdr);
  if (color_type == 3) png_chunk(out, "PLTE", palette_rgb);
  std::vector<uint8_t> raw;  // filter byte 0 + row samples
  for (uint32_t y = 0; y < h; ++y) {
    raw.push_back(0);
    for (uint32_t i = 0; i < w * channels; ++i) {
      uint8_t v = samples[y * w * channels + i];
      if (bit_depth == 16) {
        uint16_t s = static_cast<uint16_t>(v * 257 + (v < 255 ? 1 : 0));
        raw.push_back(static_cast<uint8_t>(s >> 8));
        raw.push_back(static_cast<uint8_t>(s));
      } else {
        raw.push_back(v);
      }
    }
  }
  std::vector<uint8_t> z = {0x78, 0x01};
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    size_t len = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + len == raw.size();
    z.push_back(last ? 1 : 0);
    z.insert(z.end(), {static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(~len),
                       static_cast<uint8_t>(~len >> 8)});
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + len);
    pos += len;
    if (last) break;
  }
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put_u32(z, (b << 16) | a);
  png_chunk(out, "IDAT", z);
  png_chunk(out, "IEND", {});
  return out;
}

// ---- JPEG, through libjpeg directly ---------------------------------------------------------------

// (H, W, channels) with channels 1 or 3; quality 1..100.
inline std::vector<uint8_t> make_jpeg(const std::vector<uint8_t>& px, int w, int h, int channels, int quality = 95) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(px.data() + static_cast<size_t>(cinfo.next_scanline) * w * channels);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::vector<uint8_t> out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

// The JPEG cut halfway through its entropy-coded data (the headers stay whole).
inline std::vector<uint8_t> truncate_jpeg_scan(const std::vector<uint8_t>& jpg) {
  size_t sos = 0;
  for (size_t i = 0; i + 1 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xDA) sos = i;
  if (sos == 0) throw std::runtime_error("truncate_jpeg_scan: no SOS marker");
  return std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<std::ptrdiff_t>(sos + (jpg.size() - sos) / 2));
}

// ---- CIFAR records -------------------------------------------------------------------------------

struct CifarRecord {
  std::vector<uint8_t> labels;  // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
  std::vector<uint8_t> pixels;  // 3072: R plane, G plane, B plane
};

inline std::vector<CifarRecord> random_cifar_records(int n, int label_bytes, uint64_t seed) {
  data::Rng rng(seed, 79);
  std::vector<CifarRecord> records(static_cast<size_t>(n));
  for (auto& r : records) {
    if (label_bytes == 1) {
      r.labels = {static_cast<uint8_t>(rng.uniform_int(10))};
    } else {
      r.labels = {static_cast<uint8_t>(rng.uniform_int(20)), static_cast<uint8_t>(rng.uniform_int(100))};
    }
    r.pixels.resize(3072);
    for (auto& v : r.pixels) v = static_cast<uint8_t>(rng.uniform_int(256));
  }
  return records;
}

inline void write_cifar(const std::string& path, const std::vector<CifarRecord>& records) {
  std::vector<uint8_t> bytes;
  for (const auto& r : records) {
    bytes.insert(bytes.end(), r.labels.begin(), r.labels.end());
    bytes.insert(bytes.end(), r.pixels.begin(), r.pixels.end());
  }
  write_bytes(path, bytes);
}

}  // namespace ember::testing
