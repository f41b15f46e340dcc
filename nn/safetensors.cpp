#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace ember::nn {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; ember writes host memory as is");

namespace {

using Json = nlohmann::ordered_json;  // keeps the tensors in the order they were given

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

std::string errno_text() { return std::strerror(errno); }

// Closes the descriptor when the scope ends, and (for a temporary) removes the file unless
// released after a successful rename.
struct FileGuard {
  int fd = -1;
  std::string remove_path;
  ~FileGuard() {
    if (fd >= 0) ::close(fd);
    if (!remove_path.empty()) ::unlink(remove_path.c_str());
  }
};

void write_all(int fd, const void* data, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw make_error(what, ": write failed: ", errno_text());
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Reads exactly n bytes at `offset`, or throws saying the file is truncated.
void read_exact(int fd, void* data, size_t n, uint64_t offset, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw make_error(what, ": read failed: ", errno_text());
    if (r == 0) throw make_error(what, ": truncated file (ends before byte ", offset + n, ")");
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// numel × itemsize, or UINT64_MAX when it overflows.
uint64_t byte_size(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    if (d == 0) return 0;
  unsigned __int128 n = dtype_size(dtype);
  for (int64_t d : shape) {
    n *= static_cast<uint64_t>(d);
    if (n > UINT64_MAX) return UINT64_MAX;
  }
  return static_cast<uint64_t>(n);
}

Entry parse_entry(const std::string& name, const Json& j, const std::string& what) {
  EMBER_CHECK(j.is_object(), what, ": header entry '", name, "' is not a JSON object");
  EMBER_CHECK(j.contains("dtype") && j["dtype"].is_string(), what, ": header entry '", name,
              "' has no \"dtype\" string");
  EMBER_CHECK(j.contains("shape") && j["shape"].is_array(), what, ": header entry '", name,
              "' has no \"shape\" array");
  EMBER_CHECK(j.contains("data_offsets") && j["data_offsets"].is_array() && j["data_offsets"].size() == 2, what,
              ": header entry '", name, "' has no \"data_offsets\" [begin, end] pair");
  Entry e;
  e.name = name;
  const std::string dtype = j["dtype"].get<std::string>();
  try {
    e.dtype = safetensors_dtype_from_name(dtype);
  } catch (const Error&) {
    throw make_error(what, ": tensor '", name, "' has unknown dtype '", dtype,
                     "' (expected F32, F64, BF16, F16, I32, I64, U8 or BOOL)");
  }
  // Every dim, and the product of the non-zero ones, must fit an int64_t element count: a dim of
  // 2^63 beside a 0 would otherwise pass the byte-size check (0 bytes) and become negative.
  unsigned __int128 numel = 1;
  for (const Json& d : j["shape"]) {
    EMBER_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), what, ": tensor '",
                name, "' has a shape entry that is not a non-negative integer: ", d.dump());
    const uint64_t dim = d.get<uint64_t>();
    if (dim > 0) numel *= dim;
    EMBER_CHECK(dim <= static_cast<uint64_t>(INT64_MAX) && numel <= static_cast<uint64_t>(INT64_MAX), what,
                ": tensor '", name, "' has shape entry ", d.dump(), ": the element count overflows 64 bits");
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  for (const Json& o : j["data_offsets"])
    EMBER_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0), what, ": tensor '",
                name, "' has a data offset that is not a non-negative integer: ", o.dump());
  e.begin = j["data_offsets"][0].get<uint64_t>();
  e.end = j["data_offsets"][1].get<uint64_t>();
  EMBER_CHECK(e.begin <= e.end, what, ": tensor '", name, "' has data_offsets [", e.begin, ", ", e.end,
              "] with begin after end");
  return e;
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  throw make_error("safetensors: unknown dtype");
}

DType safetensors_dtype_from_name(const std::string& name) {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::boolean})
    if (name == safetensors_dtype_name(d)) return d;
  throw make_error("safetensors: unknown dtype '", name, "'");
}

// ---- save ---------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string what = "save_safetensors: '" + path + "'";
  Json header = Json::object();
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(!name.empty(), what, ": empty tensor name");
    EMBER_CHECK(name != "__metadata__", what, ": '__metadata__' is reserved and cannot name a tensor");
    EMBER_CHECK(names.insert(name).second, what, ": tensor name '", name, "' appears twice");
    EMBER_CHECK(t.defined(), what, ": tensor '", name, "' is undefined");
    uint64_t n = t.nbytes();
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FileGuard file;
  file.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EMBER_CHECK(file.fd >= 0, what, ": cannot create the temporary file '", tmp, "': ", errno_text());
  file.remove_path = tmp;
  write_all(file.fd, &header_len, 8, what);  // little-endian host (static_assert above)
  write_all(file.fd, text.data(), text.size(), what);
  for (const auto& [name, t] : tensors) {
    Tensor host = t.contiguous().cpu();  // one tensor at a time: memory stays bounded
    write_all(file.fd, host.data_ptr(), host.nbytes(), what);
  }
  EMBER_CHECK(::fsync(file.fd) == 0, what, ": fsync failed: ", errno_text());
  int fd = file.fd;
  file.fd = -1;
  EMBER_CHECK(::close(fd) == 0, what, ": close failed: ", errno_text());
  EMBER_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, what, ": cannot rename '", tmp, "' over it: ", errno_text());
  file.remove_path.clear();
  // Make the rename itself durable (best effort: some filesystems refuse to open directories).
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// ---- load ---------------------------------------------------------------------------------

SafetensorsFile load_safetensors(const std::string& path) {
  const std::string what = "load_safetensors: '" + path + "'";
  FileGuard file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EMBER_CHECK(file.fd >= 0, what, ": cannot open: ", errno_text());
  struct stat st {};
  EMBER_CHECK(::fstat(file.fd, &st) == 0, what, ": cannot stat: ", errno_text());
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  EMBER_CHECK(file_size >= 8, what, ": truncated file (", file_size,
              " bytes, shorter than the 8-byte header length)");

  uint64_t header_len = 0;
  read_exact(file.fd, &header_len, 8, 0, what);
  EMBER_CHECK(header_len <= kMaxHeaderBytes, what, ": header length ", header_len,
              " is absurd (over 100 MB): not a safetensors file?");
  EMBER_CHECK(header_len <= file_size - 8, what, ": header length ", header_len, " is absurd: it runs past the end of ",
              "the file (", file_size, " bytes), which is truncated or not a safetensors file");
  std::string text(header_len, '\0');
  read_exact(file.fd, text.data(), header_len, 8, what);
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  // Parse, noting top-level keys seen twice (JSON allows them; safetensors does not).
  std::set<std::string> keys;
  std::string duplicate;
  Json header;
  try {
    header = Json::parse(text, [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth == 1 && event == Json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const Json::exception& e) {
    throw make_error(what, ": header is not valid JSON (", e.what(), ")");
  }
  EMBER_CHECK(header.is_object(), what, ": header is JSON but not an object (got ", header.type_name(), ")");
  EMBER_CHECK(duplicate.empty(), what, ": header names '", duplicate, "' twice");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      EMBER_CHECK(value.is_object(), what, ": __metadata__ is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        EMBER_CHECK(v.is_string(), what, ": __metadata__ value for '", k, "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    Entry e = parse_entry(key, value, what);
    EMBER_CHECK(e.end <= data_size, what, ": tensor '", e.name, "' has data_offsets [", e.begin, ", ", e.end,
                "] out of range: the data section holds ", data_size, " bytes");
    uint64_t want = byte_size(e.shape, e.dtype);
    EMBER_CHECK(want == e.end - e.begin, what, ": tensor '", e.name, "' has shape ", shape_str(e.shape), " and dtype ",
                safetensors_dtype_name(e.dtype), " (", want, " bytes) but its data_offsets [", e.begin, ", ", e.end,
                "] span ", e.end - e.begin, " bytes: they do not match");
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  const Entry* last = nullptr;  // the non-empty entry reaching furthest so far
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    EMBER_CHECK(last == nullptr || e.begin >= last->end, what, ": tensors '", last ? last->name : "", "' [",
                last ? last->begin : 0, ", ", last ? last->end : 0, "] and '", e.name, "' [", e.begin, ", ", e.end,
                "] have overlapping data_offsets");
    last = &e;
  }

  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    read_exact(file.fd, t.data_ptr(), e.end - e.begin, data_start + e.begin, what);
    if (e.dtype == DType::boolean) {  // any nonzero byte is true; keep bool storage canonical
      auto* p = static_cast<uint8_t*>(t.data_ptr());
      for (uint64_t i = 0; i < e.end - e.begin; ++i) p[i] = p[i] != 0;
    }
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

// ---- modules ------------------------------------------------------------------------------

void save_module(const std::string& path, const Module& module, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, module.state_dict(), metadata);
}

LoadReport load_module(const std::string& path, Module& module, bool strict) {
  return module.load_state_dict(load_safetensors(path).tensors, strict);
}

}  // namespace ember::nn
