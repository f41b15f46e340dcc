// Image files in and out: JPEG through libjpeg(-turbo) and PNG through libpng, decoded to the
// layout every dataset hands out, a (3, H, W) u8 RGB tensor (planar, row-major).
//
// Conversions on decode (the same as PIL's .convert("RGB")):
//   grayscale            -> R = G = B = Y
//   gray+alpha, RGBA     -> the alpha channel is dropped (not composited)
//   palette PNG          -> expanded through the palette (transparency ignored)
//   16-bit PNG           -> the high byte of each sample
//   CMYK / YCCK JPEG     -> R = C·K/255 for Adobe's inverted CMYK, (255-C)(255-K)/255 otherwise
// A corrupt or truncated file throws ember::Error naming it ("... 'dir/cat.jpg': Premature end
// of JPEG file"). libjpeg's "premature end of data" warnings count as errors: a half-decoded
// image padded with grey is not a training sample.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ember::data {

enum class ImageFormat { unknown, jpeg, png };

// The largest image decode_image and read_image_info accept, checked from the header before any
// pixel buffer is allocated: 64 megapixels by default (8192x8192, 192 MB decoded; above the
// largest phone and DSLR photos of 2024 save for a few 100+ MP sensors), or the environment
// variable EMBER_MAX_IMAGE_PIXELS. A header that claims more pixels than the file's size could
// encode (a 69-byte PNG claiming 16384x16384) is rejected as well. Both are Errors naming the
// file and the size.
constexpr int64_t kDefaultMaxImagePixels = int64_t{1} << 26;
int64_t max_image_pixels();

// From the file's first bytes (magic numbers), not its name.
ImageFormat sniff_image_format(const uint8_t* bytes, size_t size);
const char* image_format_name(ImageFormat format);

// The whole file; throws an Error naming `path` when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Decodes an encoded JPEG or PNG to (3, H, W) u8. `name` (usually the path) goes into errors.
Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name);
Tensor decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name);
Tensor decode_png(const uint8_t* bytes, size_t size, const std::string& name);
Tensor read_image(const std::string& path);  // read_file_bytes + decode_image

// What the header says, without decoding pixels (cheap: the scan of a skip_bad dataset uses it
// to leave out files that are not images at all).
struct ImageInfo {
  ImageFormat format = ImageFormat::unknown;
  int64_t width = 0, height = 0;
  int64_t channels = 0;  // in the file: 1 gray, 2 gray+alpha, 3 RGB/YCbCr, 4 RGBA/CMYK
};
ImageInfo read_image_info(const uint8_t* bytes, size_t size, const std::string& name);

// Encoders (for fixtures, generated folders and benchmarks). image: (C, H, W) u8 on the CPU with
// C = 1 (gray) or 3 (RGB) for JPEG, C = 1, 2 (gray+alpha), 3 or 4 (RGBA) for PNG.
std::vector<uint8_t> encode_jpeg(const Tensor& image, int quality = 95);
std::vector<uint8_t> encode_png(const Tensor& image);
void write_jpeg(const std::string& path, const Tensor& image, int quality = 95);
void write_png(const std::string& path, const Tensor& image);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace ember::data
