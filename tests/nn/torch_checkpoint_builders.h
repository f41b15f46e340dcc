// Hand-built torch checkpoints for the hostile-input tests: a pickle writer, the legacy file
// layout and a stored ZIP writer (with or without ZIP64 records), small enough to corrupt one
// field at a time.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "nn/zip_reader.h"

namespace ember::testing {

using Bytes = std::vector<uint8_t>;

inline void put_le(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void patch_le(Bytes& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Emits pickle opcodes (protocol 2).
struct PickleWriter {
  Bytes b;
  PickleWriter() { b = {0x80, 0x02}; }
  PickleWriter& op(uint8_t c) {
    b.push_back(c);
    return *this;
  }
  PickleWriter& str(const std::string& s) {
    op('X');
    put_le(b, s.size(), 4);
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  PickleWriter& integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put_le(b, static_cast<uint64_t>(v), 4);
    } else {
      op(0x8a).op(8);
      put_le(b, static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  PickleWriter& global(const std::string& module, const std::string& name) {
    op('c');
    b.insert(b.end(), module.begin(), module.end());
    op('\n');
    b.insert(b.end(), name.begin(), name.end());
    return op('\n');
  }
  PickleWriter& ints(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  Bytes stop() {
    op('.');
    return b;
  }
};

struct FakeTensor {
  std::string name;
  std::string storage_type = "FloatStorage";
  std::string key = "0";
  int64_t numel = 4;
  int64_t offset = 0;
  std::vector<int64_t> size{4}, stride{1};
};

// The tuple (storage, offset, size, stride, False, OrderedDict()) ...
inline PickleWriter& tensor_args(PickleWriter& p, const FakeTensor& t) {
  p.op('(').op('(').str("storage").global("torch", t.storage_type).str(t.key).str("cpu").integer(t.numel).op('t').op('Q');
  p.integer(t.offset).ints(t.size).ints(t.stride).op(0x89);
  return p.global("collections", "OrderedDict").op(')').op('R').op('t');
}
// ... passed to _rebuild_tensor_v2, as torch.save writes a tensor.
inline PickleWriter& tensor_call(PickleWriter& p, const FakeTensor& t) {
  return tensor_args(p.global("torch._utils", "_rebuild_tensor_v2"), t).op('R');
}

// An OrderedDict of tensors.
inline Bytes tensor_dict_pickle(const std::vector<FakeTensor>& tensors) {
  PickleWriter p;
  p.global("collections", "OrderedDict").op(')').op('R').op('(');
  for (const FakeTensor& t : tensors) tensor_call(p.str(t.name), t);
  return p.op('u').stop();
}

// The legacy preamble: magic number, protocol version, sys_info.
inline Bytes legacy_preamble(bool little_endian = true) {
  Bytes out;
  PickleWriter magic;
  magic.op(0x8a).op(10);
  for (uint8_t c : {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}) magic.op(c);
  Bytes m = magic.stop();
  out.insert(out.end(), m.begin(), m.end());
  Bytes v = PickleWriter().integer(1001).stop();
  out.insert(out.end(), v.begin(), v.end());
  PickleWriter info;
  info.op('}').op('(').str("protocol_version").integer(1001).str("little_endian").op(little_endian ? 0x88 : 0x89);
  Bytes i = info.op('u').stop();
  out.insert(out.end(), i.begin(), i.end());
  return out;
}

// A whole legacy file: preamble, the object pickle, the key list, then (count, bytes) per key.
struct LegacyStorage {
  std::string key;
  uint64_t count;  // elements, as written
  Bytes data;
};
inline Bytes legacy_file(const Bytes& object_pickle, const std::vector<LegacyStorage>& storages) {
  Bytes out = legacy_preamble();
  out.insert(out.end(), object_pickle.begin(), object_pickle.end());
  PickleWriter keys;
  keys.op('(');
  for (const LegacyStorage& s : storages) keys.str(s.key);
  Bytes k = keys.op('l').stop();
  out.insert(out.end(), k.begin(), k.end());
  for (const LegacyStorage& s : storages) {
    put_le(out, s.count, 8);
    out.insert(out.end(), s.data.begin(), s.data.end());
  }
  return out;
}

inline Bytes floats(const std::vector<float>& v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A stored ZIP archive. central_at[i] is where entry i's central directory record starts, so a
// test can overwrite its fields (size at +24, offset at +42 ...).
struct Zip {
  Bytes bytes;
  std::vector<size_t> central_at;
};
inline Zip make_zip(const std::vector<std::pair<std::string, Bytes>>& entries, bool zip64 = false) {
  Zip z;
  std::vector<uint64_t> local_at;
  for (const auto& [name, data] : entries) {
    local_at.push_back(z.bytes.size());
    put_le(z.bytes, 0x04034b50, 4);
    put_le(z.bytes, 20, 2);
    put_le(z.bytes, 0, 2);  // flags
    put_le(z.bytes, 0, 2);  // stored
    put_le(z.bytes, 0, 4);  // time, date
    put_le(z.bytes, nn::crc32(data.data(), data.size()), 4);
    put_le(z.bytes, data.size(), 4);
    put_le(z.bytes, data.size(), 4);
    put_le(z.bytes, name.size(), 2);
    put_le(z.bytes, 0, 2);
    z.bytes.insert(z.bytes.end(), name.begin(), name.end());
    z.bytes.insert(z.bytes.end(), data.begin(), data.end());
  }
  const uint64_t dir_at = z.bytes.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [name, data] = entries[i];
    z.central_at.push_back(z.bytes.size());
    put_le(z.bytes, 0x02014b50, 4);
    put_le(z.bytes, 45, 2);
    put_le(z.bytes, 45, 2);
    put_le(z.bytes, 0, 2);  // flags
    put_le(z.bytes, 0, 2);  // stored
    put_le(z.bytes, 0, 4);  // time, date
    put_le(z.bytes, nn::crc32(data.data(), data.size()), 4);
    put_le(z.bytes, zip64 ? 0xFFFFFFFF : data.size(), 4);
    put_le(z.bytes, zip64 ? 0xFFFFFFFF : data.size(), 4);
    put_le(z.bytes, name.size(), 2);
    put_le(z.bytes, zip64 ? 28 : 0, 2);  // extra
    put_le(z.bytes, 0, 2);               // comment
    put_le(z.bytes, 0, 2);               // disk
    put_le(z.bytes, 0, 2);               // internal attributes
    put_le(z.bytes, 0, 4);               // external attributes
    put_le(z.bytes, zip64 ? 0xFFFFFFFF : local_at[i], 4);
    z.bytes.insert(z.bytes.end(), name.begin(), name.end());
    if (zip64) {  // uncompressed, compressed, local header offset
      put_le(z.bytes, 0x0001, 2);
      put_le(z.bytes, 24, 2);
      put_le(z.bytes, data.size(), 8);
      put_le(z.bytes, data.size(), 8);
      put_le(z.bytes, local_at[i], 8);
    }
  }
  const uint64_t dir_size = z.bytes.size() - dir_at;
  if (zip64) {
    const uint64_t rec = z.bytes.size();
    put_le(z.bytes, 0x06064b50, 4);
    put_le(z.bytes, 44, 8);
    put_le(z.bytes, 45, 2);
    put_le(z.bytes, 45, 2);
    put_le(z.bytes, 0, 4);
    put_le(z.bytes, 0, 4);
    put_le(z.bytes, entries.size(), 8);
    put_le(z.bytes, entries.size(), 8);
    put_le(z.bytes, dir_size, 8);
    put_le(z.bytes, dir_at, 8);
    put_le(z.bytes, 0x07064b50, 4);
    put_le(z.bytes, 0, 4);
    put_le(z.bytes, rec, 8);
    put_le(z.bytes, 1, 4);
  }
  put_le(z.bytes, 0x06054b50, 4);
  put_le(z.bytes, 0, 4);
  put_le(z.bytes, zip64 ? 0xFFFF : entries.size(), 2);
  put_le(z.bytes, zip64 ? 0xFFFF : entries.size(), 2);
  put_le(z.bytes, zip64 ? 0xFFFFFFFF : dir_size, 4);
  put_le(z.bytes, zip64 ? 0xFFFFFFFF : dir_at, 4);
  put_le(z.bytes, 0, 2);
  return z;
}

}  // namespace ember::testing
