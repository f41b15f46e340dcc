#include "nn/zip_reader.h"

#include <array>
#include <cstring>

#include "tensor/error.h"

namespace ember::nn {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;    // "PK\3\4"
constexpr uint32_t kCentralHeaderSig = 0x02014b50;  // "PK\1\2"
constexpr uint32_t kEndSig = 0x06054b50;            // "PK\5\6"
constexpr uint32_t kZip64EndSig = 0x06064b50;       // "PK\6\6"
constexpr uint32_t kZip64LocatorSig = 0x07064b50;   // "PK\6\7"
constexpr size_t kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr size_t kCentralHeaderSize = 46, kLocalHeaderSize = 30;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) { return u16(p) | (static_cast<uint32_t>(u16(p + 2)) << 16); }
uint64_t u64(const uint8_t* p) { return u32(p) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

// [offset, offset + length) lies inside [0, limit), without overflow.
bool in_range(uint64_t offset, uint64_t length, uint64_t limit) { return offset <= limit && length <= limit - offset; }

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

bool looks_like_zip(const uint8_t* data, size_t size) { return size >= 4 && u32(data) == kLocalHeaderSig; }

ZipReader::ZipReader(const uint8_t* data, size_t size, std::string what)
    : data_(data), size_(size), what_(std::move(what)) {
  // ---- the end-of-central-directory record: the last "PK\5\6" whose comment fits ----------------
  EMBER_CHECK(size_ >= kEndSize, what_, ": not a ZIP archive (", size_, " bytes, too short for its directory)");
  size_t end = SIZE_MAX;
  const size_t lowest = size_ - kEndSize > 0xFFFF ? size_ - kEndSize - 0xFFFF : 0;
  for (size_t p = size_ - kEndSize + 1; p-- > lowest;) {
    if (u32(data_ + p) == kEndSig && p + kEndSize + u16(data_ + p + 20) <= size_) {
      end = p;
      break;
    }
  }
  EMBER_CHECK(end != SIZE_MAX, what_, ": truncated or not a ZIP archive (no end-of-central-directory record)");
  const uint8_t* e = data_ + end;
  EMBER_CHECK(u16(e + 4) == 0 && u16(e + 6) == 0, what_, ": multi-disk ZIP archives are not supported");
  uint64_t count = u16(e + 10), dir_size = u32(e + 12), dir_offset = u32(e + 16);
  uint64_t dir_limit = end;  // the directory ends before the records that describe it

  // ---- ZIP64: a locator right before the end record points at the 64-bit version ----------------
  if (end >= kZip64LocatorSize && u32(data_ + end - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = data_ + end - kZip64LocatorSize;
    uint64_t rec = u64(loc + 8);
    EMBER_CHECK(in_range(rec, kZip64EndSize, end - kZip64LocatorSize) && u32(data_ + rec) == kZip64EndSig, what_,
                ": ZIP64 locator points at offset ", rec, ", where there is no ZIP64 end-of-directory record");
    const uint8_t* z = data_ + rec;
    count = u64(z + 32);
    dir_size = u64(z + 40);
    dir_offset = u64(z + 48);
    dir_limit = rec;
  } else {
    EMBER_CHECK(count != 0xFFFF && dir_size != 0xFFFFFFFF && dir_offset != 0xFFFFFFFF, what_,
                ": the directory needs ZIP64 records, but there are none (truncated archive?)");
  }
  EMBER_CHECK(in_range(dir_offset, dir_size, dir_limit), what_, ": central directory at [", dir_offset, ", +",
              dir_size, ") runs past its end record at ", dir_limit, " (truncated or corrupt archive)");
  EMBER_CHECK(count <= dir_size / kCentralHeaderSize, what_, ": the directory claims ", count,
              " entries but has room for ", dir_size / kCentralHeaderSize);

  // ---- the central directory: one record per entry ------------------------------------------------
  entries_.reserve(count);
  const uint64_t dir_end = dir_offset + dir_size;
  uint64_t p = dir_offset;
  for (uint64_t i = 0; i < count; ++i) {
    EMBER_CHECK(in_range(p, kCentralHeaderSize, dir_end) && u32(data_ + p) == kCentralHeaderSig, what_,
                ": central directory record ", i, " at offset ", p, " is missing or corrupt");
    const uint8_t* c = data_ + p;
    const uint16_t flags = u16(c + 8), method = u16(c + 10);
    const uint16_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    EMBER_CHECK(in_range(p + kCentralHeaderSize, uint64_t{name_len} + extra_len + comment_len, dir_end), what_,
                ": central directory record ", i, " runs past the directory");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(c + kCentralHeaderSize), name_len);
    entry.crc32 = u32(c + 16);
    uint64_t compressed = u32(c + 20), uncompressed = u32(c + 24), local = u32(c + 42);
    // The ZIP64 extra field holds, in this order, whichever of the three were all ones.
    const uint8_t* x = c + kCentralHeaderSize + name_len;
    for (size_t k = 0; k + 4 <= extra_len;) {
      const uint16_t id = u16(x + k), len = u16(x + k + 2);
      EMBER_CHECK(k + 4 + len <= extra_len, what_, ": entry '", entry.name, "' has a malformed extra field");
      if (id == 0x0001) {
        size_t q = k + 4;
        for (uint64_t* field : {&uncompressed, &compressed, &local}) {
          if (*field != 0xFFFFFFFF) continue;
          EMBER_CHECK(q + 8 <= k + 4 + len, what_, ": entry '", entry.name, "' has a short ZIP64 extra field");
          *field = u64(x + q);
          q += 8;
        }
      }
      k += 4 + len;
    }
    EMBER_CHECK(!(flags & 1), what_, ": entry '", entry.name, "' is encrypted");
    EMBER_CHECK(method == 0, what_, ": entry '", entry.name, "' is compressed (method ", method,
                "); torch.save writes stored entries only (was the archive re-zipped?)");
    EMBER_CHECK(compressed == uncompressed, what_, ": stored entry '", entry.name, "' has compressed size ",
                compressed, " but uncompressed size ", uncompressed);
    // The local header repeats the name; its own extra field (torch's alignment padding) decides
    // where the data starts. Sizes there may be zero (flag bit 3), so the directory's are used.
    EMBER_CHECK(in_range(local, kLocalHeaderSize, dir_offset) && u32(data_ + local) == kLocalHeaderSig, what_,
                ": entry '", entry.name, "' points at offset ", local, ", where there is no local header");
    const uint8_t* l = data_ + local;
    const uint64_t data_offset = local + kLocalHeaderSize + u16(l + 26) + u16(l + 28);
    EMBER_CHECK(u16(l + 26) == name_len && in_range(local + kLocalHeaderSize, name_len, dir_offset) &&
                    std::memcmp(l + kLocalHeaderSize, entry.name.data(), name_len) == 0,
                what_, ": entry '", entry.name, "': its local header names a different entry");
    EMBER_CHECK(in_range(data_offset, uncompressed, dir_offset), what_, ": entry '", entry.name, "' claims ",
                uncompressed, " bytes at offset ", data_offset, ", past the end of the data (at ", dir_offset,
                "): truncated or corrupt archive");
    entry.data_offset = data_offset;
    entry.size = uncompressed;
    EMBER_CHECK(index_.emplace(entry.name, entries_.size()).second, what_, ": entry '", entry.name,
                "' appears twice");
    entries_.push_back(std::move(entry));
    p += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::span<const uint8_t> ZipReader::read(const ZipEntry& entry) const {
  std::span<const uint8_t> bytes(data_ + entry.data_offset, entry.size);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzzers cannot fix up checksums
  const uint32_t crc = crc32(bytes.data(), bytes.size());
  EMBER_CHECK(crc == entry.crc32, what_, ": entry '", entry.name, "' is corrupt (CRC-32 ", crc,
              ", the directory says ", entry.crc32, ")");
#endif
  return bytes;
}

}  // namespace ember::nn
