// A minimal, defensive ZIP reader for the archives torch.save writes (PyTorch >= 1.6).
//
// A ZIP file is read from its end:
//
//   [local header 1][data 1] ... [local header N][data N]
//   [central directory: one 46-byte record + name + extra + comment per entry]
//   [ZIP64 end-of-central-directory record (56 bytes) and its 20-byte locator]   (optional)
//   [end-of-central-directory record (22 bytes) + comment (<= 65535 bytes)]
//
//   end of central directory  "PK\5\6": entry count (u16), directory size (u32) and offset (u32);
//                              a field that is all ones means "see the ZIP64 record".
//   ZIP64 locator             "PK\6\7": offset (u64) of the ZIP64 record "PK\6\6", which holds the
//                              same three numbers as u64.
//   central directory record  "PK\1\2": flags (u16, bit 0 = encrypted), method (u16, 0 = stored),
//                              CRC-32, compressed and uncompressed sizes (u32), name/extra/comment
//                              lengths (u16), local header offset (u32). Sizes and offset that are
//                              all ones are in the ZIP64 extra field (id 0x0001) as u64, in the order
//                              uncompressed, compressed, offset.
//   local header              "PK\3\4": 30 bytes, then the name and an extra field whose lengths
//                              (u16 at bytes 26 and 28) say where the data starts. torch sets flag
//                              bit 3 (sizes in a data descriptor after the data, zeros here) and pads
//                              the extra field ("FB" records) so data starts on a 64-byte boundary.
//
// Everything is little-endian. torch writes every entry stored (uncompressed) and always writes
// the ZIP64 records (ZIP64 extra fields only where a size or offset needs them); this reader
// accepts stored entries only and reads sizes from the central directory. Every offset and
// length is checked against the buffer before use; the CRC-32 of an entry is checked when its
// data is read. Errors name the archive (`what`) and the entry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace ember::nn {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // where the stored bytes start in the buffer
  uint64_t size = 0;         // stored (= uncompressed) size
  uint32_t crc32 = 0;
};

class ZipReader {
 public:
  // Parses the directory of the archive in data[0, size) (which must outlive the reader).
  // `what` names the archive in errors, e.g. "load_torch_checkpoint: 'model.pth'".
  ZipReader(const uint8_t* data, size_t size, std::string what);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  // The entry's bytes, after checking its CRC-32.
  std::span<const uint8_t> read(const ZipEntry& entry) const;

 private:
  const uint8_t* data_;
  size_t size_;
  std::string what_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
};

// True when the buffer starts like a ZIP archive ("PK\3\4").
bool looks_like_zip(const uint8_t* data, size_t size);

// CRC-32 (the ZIP / zlib polynomial 0xEDB88320).
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace ember::nn
