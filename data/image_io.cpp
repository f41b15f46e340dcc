// JPEG and PNG through libjpeg(-turbo) and libpng.
//
// Both libraries report errors by longjmp. The rule that keeps that safe in C++: every
// function that calls setjmp (the *_step helpers below) holds only trivially destructible
// locals, and everything with a destructor (buffers, tensors, the library state's cleanup)
// lives in the caller, created before the step runs. A step returns false on error with the
// library's message in the state struct; the caller turns that into an ember::Error.
#include "data/image_io.h"

#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
// clang-format on

#include "tensor/error.h"

namespace ember::data {

namespace {

// What a header may claim, checked before anything the size of the image is allocated: a
// 69-byte PNG or a 713-byte JPEG claiming 16384x16384 must not make us zero 800 MB first.
//   - at most max_image_pixels() pixels;
//   - no more than the file could encode: deflate expands at most 1032:1, so a PNG's rows
//     (height × (1 + ⌈width·channels·depth/8⌉) bytes) are at most 1032× its size; a Huffman-coded
//     JPEG spends at least 1 bit on each 8x8 block of its full-resolution component, so its
//     pixels are at most 64·8 = 512 per byte (checked with a factor 2 of slack; arithmetic-coded
//     JPEGs can go below a bit per block and get only the pixel limit).
constexpr int64_t kDeflateMaxRatio = 1032;
constexpr int64_t kJpegMaxPixelsPerByte = 2 * 512;

void check_dims(int64_t width, int64_t height, const std::string& name) {
  const int64_t limit = max_image_pixels();
  EMBER_CHECK(width > 0 && height > 0 && width <= limit / height,
              "decode_image: '", name, "': image size ", width, "x", height, " is over the limit of ", limit,
              " pixels (set EMBER_MAX_IMAGE_PIXELS to allow larger images)");
}

// `encoded_bound`: the fewest bytes that could encode the image (in double: no overflow).
void check_plausible(int64_t width, int64_t height, double encoded_bound, size_t file_size, const char* why,
                     const std::string& name) {
  EMBER_CHECK(encoded_bound <= static_cast<double>(file_size), "decode_image: '", name, "': implausible image size ",
              width, "x", height, " for a ", file_size, "-byte file (", why, ")");
}

void check_png_header(int64_t width, int64_t height, int64_t channels, int64_t depth, size_t size,
                      const std::string& name) {
  check_dims(width, height, name);
  const double row_bytes = 1 + std::ceil(static_cast<double>(width) * static_cast<double>(channels * depth) / 8);
  check_plausible(width, height, static_cast<double>(height) * row_bytes / kDeflateMaxRatio, size,
                  "its rows would need more than deflate's 1032:1 compression", name);
}

void check_jpeg_header(int64_t width, int64_t height, bool arithmetic, size_t size, const std::string& name) {
  check_dims(width, height, name);
  if (!arithmetic)
    check_plausible(width, height, static_cast<double>(width) * static_cast<double>(height) / kJpegMaxPixelsPerByte, size,
                    "a Huffman-coded JPEG needs at least one bit per 8x8 block", name);
}

// Interleaved (H, W, 3) -> planar (3, H, W).
Tensor hwc_to_chw(const std::vector<uint8_t>& hwc, int64_t height, int64_t width) {
  Tensor out = empty({3, height, width}, DType::u8);
  uint8_t* dst = out.data<uint8_t>();  // (3, H, W)
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p) {
    dst[p] = hwc[3 * p];
    dst[plane + p] = hwc[3 * p + 1];
    dst[2 * plane + p] = hwc[3 * p + 2];
  }
  return out;
}

// Planar (C, H, W) u8 tensor -> interleaved (H, W, C) bytes.
std::vector<uint8_t> chw_to_hwc(const Tensor& image, const char* op, std::initializer_list<int64_t> channels) {
  EMBER_CHECK(image.defined() && image.device().is_cpu() && image.dtype() == DType::u8 && image.dim() == 3, op,
              ": expects a (C, H, W) u8 CPU tensor, got ",
              image.defined() ? image.str() : std::string("an undefined tensor"));
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  bool ok = false;
  for (int64_t allowed : channels) ok = ok || c == allowed;
  EMBER_CHECK(ok && h > 0 && w > 0, op, ": unsupported image shape ", image.shape_str());
  Tensor src = image.contiguous();
  const uint8_t* s = src.data<uint8_t>();
  std::vector<uint8_t> hwc(static_cast<size_t>(c * h * w));
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t p = 0; p < h * w; ++p) hwc[p * c + ch] = s[ch * h * w + p];
  return hwc;
}

// ---- JPEG ------------------------------------------------------------------------------

struct JpegErrorState {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* state = reinterpret_cast<JpegErrorState*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, state->message);
  longjmp(state->jump, 1);
}

// Warnings (level -1) that mean the data ran out are errors; the rest, and all trace
// messages, are dropped (libjpeg would print the first warning to stderr).
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) jpeg_fail(cinfo);
  cinfo->err->num_warnings++;
}

struct JpegDecoder {
  jpeg_decompress_struct cinfo{};
  JpegErrorState err{};
  bool created = false;
  JpegDecoder() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_fail;
    err.pub.emit_message = jpeg_message;
  }
  ~JpegDecoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

bool jpeg_header_step(JpegDecoder* d, const uint8_t* bytes, size_t size) {
  if (setjmp(d->err.jump)) return false;
  jpeg_create_decompress(&d->cinfo);
  d->created = true;
  jpeg_mem_src(&d->cinfo, const_cast<unsigned char*>(bytes), static_cast<unsigned long>(size));
  jpeg_read_header(&d->cinfo, TRUE);
  return true;
}

// Sets the output colour space and starts decompressing (libjpeg allocates its buffers here, a
// progressive file's whole-image coefficients among them: call it after check_jpeg_header).
bool jpeg_start_step(JpegDecoder* d) {
  if (setjmp(d->err.jump)) return false;
  bool cmyk = d->cinfo.jpeg_color_space == JCS_CMYK || d->cinfo.jpeg_color_space == JCS_YCCK;
  d->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&d->cinfo);
  return true;
}

// Reads every scanline into hwc (H, W, 3), converting CMYK rows on the way.
bool jpeg_pixels_step(JpegDecoder* d, uint8_t* hwc) {
  if (setjmp(d->err.jump)) return false;
  jpeg_decompress_struct& ci = d->cinfo;
  const JDIMENSION width = ci.output_width;
  const int comps = ci.output_components;
  JSAMPARRAY row = (*ci.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&ci), JPOOL_IMAGE, width * comps, 1);
  const bool inverted = ci.saw_Adobe_marker;
  while (ci.output_scanline < ci.output_height) {
    uint8_t* out = hwc + static_cast<size_t>(ci.output_scanline) * width * 3;
    if (comps == 3) {  // RGB rows straight into place
      JSAMPROW dst = out;
      jpeg_read_scanlines(&ci, &dst, 1);
    } else {
      jpeg_read_scanlines(&ci, row, 1);  // CMYK
      for (JDIMENSION x = 0; x < width; ++x) {
        const uint8_t* p = row[0] + 4 * x;
        int k = inverted ? p[3] : 255 - p[3];
        for (int c = 0; c < 3; ++c) {
          int v = inverted ? p[c] : 255 - p[c];
          out[3 * x + c] = static_cast<uint8_t>((v * k + 127) / 255);
        }
      }
    }
  }
  jpeg_finish_decompress(&ci);
  return true;
}

struct JpegEncoder {
  jpeg_compress_struct cinfo{};
  JpegErrorState err{};
  bool created = false;
  unsigned char* buffer = nullptr;  // malloc'd by jpeg_mem_dest
  unsigned long size = 0;
  JpegEncoder() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_fail;
    err.pub.emit_message = jpeg_message;
  }
  ~JpegEncoder() {
    if (created) jpeg_destroy_compress(&cinfo);
    std::free(buffer);
  }
};

bool jpeg_encode_step(JpegEncoder* e, const uint8_t* hwc, int width, int height, int channels, int quality) {
  if (setjmp(e->err.jump)) return false;
  jpeg_create_compress(&e->cinfo);
  e->created = true;
  jpeg_mem_dest(&e->cinfo, &e->buffer, &e->size);
  e->cinfo.image_width = static_cast<JDIMENSION>(width);
  e->cinfo.image_height = static_cast<JDIMENSION>(height);
  e->cinfo.input_components = channels;
  e->cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&e->cinfo);
  jpeg_set_quality(&e->cinfo, quality, TRUE);
  jpeg_start_compress(&e->cinfo, TRUE);
  while (e->cinfo.next_scanline < e->cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(hwc + static_cast<size_t>(e->cinfo.next_scanline) * width * channels);
    jpeg_write_scanlines(&e->cinfo, &row, 1);
  }
  jpeg_finish_compress(&e->cinfo);
  return true;
}

// ---- PNG -------------------------------------------------------------------------------

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;  // reading: the encoded bytes
  size_t size = 0, pos = 0;
  std::vector<uint8_t>* out = nullptr;  // writing: where the bytes go
  char message[256] = {};
};

void png_fail(png_structp png, png_const_charp msg) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", msg ? msg : "libpng error");
  png_longjmp(png, 1);
}
void png_ignore_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep dst, png_size_t n) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  if (state->size - state->pos < n) png_error(png, "unexpected end of file (truncated PNG)");
  std::memcpy(dst, state->data + state->pos, n);
  state->pos += n;
}
void png_write_bytes(png_structp png, png_bytep src, png_size_t n) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  state->out->insert(state->out->end(), src, src + n);
}
void png_flush_nothing(png_structp) {}

struct PngReader : PngState {
  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};
struct PngWriter : PngState {
  ~PngWriter() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

bool png_create_read_step(PngReader* r, const uint8_t* bytes, size_t size) {
  r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, png_fail, png_ignore_warning);
  if (!r->png) return false;
  r->info = png_create_info_struct(r->png);
  if (!r->info) return false;
  r->data = bytes;
  r->size = size;
  png_set_read_fn(r->png, r, png_read_bytes);
  return true;
}

bool png_header_step(PngReader* r) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  png_read_info(r->png, r->info);
  return true;
}

// Sets up the conversions to 8-bit RGB and updates the info (after check_png_header).
bool png_to_rgb_step(PngReader* r) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  const int color = png_get_color_type(r->png, r->info);
  const int depth = png_get_bit_depth(r->png, r->info);
  if (depth == 16) png_set_strip_16(r->png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(r->png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(r->png);
  png_set_interlace_handling(r->png);
  png_read_update_info(r->png, r->info);
  return true;
}

bool png_pixels_step(PngReader* r, png_bytepp rows) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  png_read_image(r->png, rows);
  png_read_end(r->png, nullptr);
  return true;
}

bool png_encode_step(PngWriter* w, png_bytepp rows, int width, int height, int channels) {
  w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, w, png_fail, png_ignore_warning);
  if (!w->png) return false;
  w->info = png_create_info_struct(w->png);
  if (!w->info) return false;
  if (setjmp(png_jmpbuf(w->png))) return false;
  const int color = channels == 1   ? PNG_COLOR_TYPE_GRAY
                    : channels == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
                    : channels == 3 ? PNG_COLOR_TYPE_RGB
                                    : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_write_fn(w->png, w, png_write_bytes, png_flush_nothing);
  png_set_IHDR(w->png, w->info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, color,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w->png, w->info);
  png_write_image(w->png, rows);
  png_write_end(w->png, nullptr);
  return true;
}

}  // namespace

// ---- public API ------------------------------------------------------------------------

int64_t max_image_pixels() {
  const char* env = std::getenv("EMBER_MAX_IMAGE_PIXELS");
  if (!env || !*env) return kDefaultMaxImagePixels;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(env, &end, 10);
  EMBER_CHECK(errno == 0 && *end == '\0' && v > 0, "EMBER_MAX_IMAGE_PIXELS: '", env,
              "' is not a positive whole number of pixels");
  return v;
}

ImageFormat sniff_image_format(const uint8_t* bytes, size_t size) {
  if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return ImageFormat::jpeg;
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(bytes, png_magic, 8) == 0) return ImageFormat::png;
  return ImageFormat::unknown;
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::jpeg: return "JPEG";
    case ImageFormat::png: return "PNG";
    default: return "unknown";
  }
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw make_error("read_file: cannot open '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  EMBER_CHECK(!failed, "read_file: error reading '", path, "'");
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  EMBER_CHECK(out.good(), "write_file: cannot create '", path, "'");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EMBER_CHECK(out.good(), "write_file: error writing '", path, "'");
}

Tensor decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name) {
  JpegDecoder d;
  if (!jpeg_header_step(&d, bytes, size))
    throw make_error("decode_jpeg: cannot decode '", name, "': ", d.err.message);
  check_jpeg_header(d.cinfo.image_width, d.cinfo.image_height, d.cinfo.arith_code, size, name);
  if (!jpeg_start_step(&d)) throw make_error("decode_jpeg: cannot decode '", name, "': ", d.err.message);
  const int64_t width = d.cinfo.output_width, height = d.cinfo.output_height;
  std::vector<uint8_t> hwc(static_cast<size_t>(width * height * 3));  // (H, W, 3)
  if (!jpeg_pixels_step(&d, hwc.data()))
    throw make_error("decode_jpeg: cannot decode '", name, "': ", d.err.message);
  return hwc_to_chw(hwc, height, width);
}

Tensor decode_png(const uint8_t* bytes, size_t size, const std::string& name) {
  PngReader r;
  if (!png_create_read_step(&r, bytes, size)) throw make_error("decode_png: '", name, "': cannot create libpng state");
  if (!png_header_step(&r)) throw make_error("decode_png: cannot decode '", name, "': ", r.message);
  const int64_t width = png_get_image_width(r.png, r.info), height = png_get_image_height(r.png, r.info);
  check_png_header(width, height, png_get_channels(r.png, r.info), png_get_bit_depth(r.png, r.info), size, name);
  if (!png_to_rgb_step(&r)) throw make_error("decode_png: cannot decode '", name, "': ", r.message);
  EMBER_CHECK(png_get_rowbytes(r.png, r.info) == static_cast<size_t>(width * 3), "decode_png: '", name,
              "': unexpected row size after conversion to 8-bit RGB");
  std::vector<uint8_t> hwc(static_cast<size_t>(width * height * 3));  // (H, W, 3)
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y) rows[y] = hwc.data() + y * width * 3;
  if (!png_pixels_step(&r, rows.data())) throw make_error("decode_png: cannot decode '", name, "': ", r.message);
  return hwc_to_chw(hwc, height, width);
}

Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name) {
  switch (sniff_image_format(bytes, size)) {
    case ImageFormat::jpeg: return decode_jpeg(bytes, size, name);
    case ImageFormat::png: return decode_png(bytes, size, name);
    default:
      throw make_error("decode_image: '", name, "' is not a JPEG or PNG file (", size == 0 ? "empty" : "unknown",
                       " header)");
  }
}

Tensor read_image(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

ImageInfo read_image_info(const uint8_t* bytes, size_t size, const std::string& name) {
  ImageInfo info;
  info.format = sniff_image_format(bytes, size);
  if (info.format == ImageFormat::jpeg) {
    JpegDecoder d;
    if (!jpeg_header_step(&d, bytes, size))
      throw make_error("read_image_info: cannot read '", name, "': ", d.err.message);
    info.width = d.cinfo.image_width;
    info.height = d.cinfo.image_height;
    info.channels = d.cinfo.num_components;
    check_jpeg_header(info.width, info.height, d.cinfo.arith_code, size, name);
  } else if (info.format == ImageFormat::png) {
    PngReader r;
    if (!png_create_read_step(&r, bytes, size) || !png_header_step(&r))
      throw make_error("read_image_info: cannot read '", name, "': ", r.message);
    info.width = png_get_image_width(r.png, r.info);
    info.height = png_get_image_height(r.png, r.info);
    info.channels = png_get_channels(r.png, r.info);
    check_png_header(info.width, info.height, info.channels, png_get_bit_depth(r.png, r.info), size, name);
  } else {
    throw make_error("read_image_info: '", name, "' is not a JPEG or PNG file");
  }
  return info;
}

std::vector<uint8_t> encode_jpeg(const Tensor& image, int quality) {
  EMBER_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in [1, 100], got ", quality);
  std::vector<uint8_t> hwc = chw_to_hwc(image, "encode_jpeg", {1, 3});
  JpegEncoder e;
  if (!jpeg_encode_step(&e, hwc.data(), static_cast<int>(image.size(2)), static_cast<int>(image.size(1)),
                        static_cast<int>(image.size(0)), quality))
    throw make_error("encode_jpeg: ", e.err.message);
  return std::vector<uint8_t>(e.buffer, e.buffer + e.size);
}

std::vector<uint8_t> encode_png(const Tensor& image) {
  std::vector<uint8_t> hwc = chw_to_hwc(image, "encode_png", {1, 2, 3, 4});
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  std::vector<png_bytep> rows(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) rows[y] = hwc.data() + y * w * c;
  std::vector<uint8_t> out;
  PngWriter wr;
  wr.out = &out;
  if (!png_encode_step(&wr, rows.data(), static_cast<int>(w), static_cast<int>(h), static_cast<int>(c)))
    throw make_error("encode_png: ", wr.message);
  return out;
}

void write_jpeg(const std::string& path, const Tensor& image, int quality) {
  write_file_bytes(path, encode_jpeg(image, quality));
}
void write_png(const std::string& path, const Tensor& image) { write_file_bytes(path, encode_png(image)); }

}  // namespace ember::data
