#include "nn/torch_checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <unordered_set>

#include "nn/pickle.h"
#include "nn/zip_reader.h"

namespace ember::nn {

static_assert(std::endian::native == std::endian::little, "torch checkpoints are read as little-endian host memory");

namespace {

using pickle::Document;
using pickle::Kind;
using pickle::Ref;
using pickle::Value;
using Bytes = std::span<const uint8_t>;

// How much bigger than its storage a view may be (stride-0 broadcasts), and how much more than
// 4x the file all tensors together may take (the same storage viewed by many names).
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr uint64_t kMaxBroadcastBytes = uint64_t{64} << 20;
#else
constexpr uint64_t kMaxBroadcastBytes = uint64_t{1} << 20;  // keeps fuzzing fast
#endif
constexpr size_t kMaxDims = 64;
constexpr char kStorageObject[] = "storage", kTensorObject[] = "torch.Tensor";

// torch.<X>Storage -> dtype; the ones ember has no dtype for are named in the error.
struct StorageType {
  const char* global;
  DType dtype;
  bool supported;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", DType::f32, true},        {"torch.DoubleStorage", DType::f64, true},
    {"torch.HalfStorage", DType::f16, true},         {"torch.BFloat16Storage", DType::bf16, true},
    {"torch.LongStorage", DType::i64, true},         {"torch.IntStorage", DType::i32, true},
    {"torch.ByteStorage", DType::u8, true},          {"torch.BoolStorage", DType::boolean, true},
    {"torch.ShortStorage", DType::u8, false},        {"torch.CharStorage", DType::u8, false},
    {"torch.ComplexFloatStorage", DType::u8, false}, {"torch.ComplexDoubleStorage", DType::u8, false},
};
const StorageType* find_storage_type(const std::string& global) {
  for (const StorageType& t : kStorageTypes)
    if (global == t.global) return &t;
  return nullptr;
}

const std::set<std::string>& allowed_globals() {
  static const std::set<std::string> names = [] {
    std::set<std::string> s = {"collections.OrderedDict",
                               "torch._utils._rebuild_tensor_v2",
                               "torch._utils._rebuild_tensor",
                               "torch._utils._rebuild_parameter",
                               "torch._utils._rebuild_parameter_with_state",
                               "torch._tensor._rebuild_from_type_v2",
                               "torch.Tensor",
                               "torch.nn.parameter.Parameter"};
    for (const StorageType& t : kStorageTypes) s.insert(t.global);
    return s;
  }();
  return names;
}

// A storage as a persistent id describes it: `numel` elements of `dtype` starting `elem_offset`
// elements into the bytes of storage `key` (views exist in legacy files only).
struct StorageRef {
  std::string key;
  DType dtype;
  uint64_t elem_offset = 0;
  uint64_t numel = 0;
};
struct TensorRef {
  uint32_t storage;
  int64_t offset;
  Shape size, stride;
};

// Runs the object pickle: turns persistent ids into StorageRefs and rebuild calls into TensorRefs.
class TorchObjects {
 public:
  explicit TorchObjects(std::string what) : what_(std::move(what)) {}

  pickle::Hooks hooks() {
    pickle::Hooks h;
    h.allow_global = [](const std::string& g) { return allowed_globals().count(g) > 0; };
    h.persistent_load = [this](Document& doc, Ref pid) { return persistent_load(doc, pid); };
    h.reduce = [this](Document& doc, Ref callable, Ref args) { return reduce(doc, callable, args); };
    h.build = [this](Document& doc, Ref object, Ref state) { build(doc, object, state); };
    return h;
  }

  Document doc;
  std::vector<StorageRef> storages;
  std::vector<TensorRef> tensors;
  std::map<std::string, std::pair<DType, uint64_t>> roots;  // key -> (dtype, numel) as first declared

 private:
  const std::vector<Ref>& tuple(const Document& doc, Ref r, size_t lo, size_t hi, const std::string& ctx) const {
    const Value& v = doc[r];
    EMBER_CHECK(v.kind == Kind::tuple && v.items.size() >= lo && v.items.size() <= hi, what_, ": ", ctx,
                " expects a tuple of ", lo, lo == hi ? "" : "-" + std::to_string(hi), " items, got ", doc.describe(r));
    return v.items;
  }
  int64_t non_negative(const Document& doc, Ref r, const std::string& ctx) const {
    EMBER_CHECK(doc[r].kind == Kind::integer && doc[r].integer >= 0, what_, ": ", ctx,
                " must be a non-negative integer, got ", doc.describe(r));
    return doc[r].integer;
  }
  Shape int_tuple(const Document& doc, Ref r, const std::string& ctx) const {
    const std::vector<Ref>& items = tuple(doc, r, 0, kMaxDims, ctx);
    Shape s;
    for (Ref i : items) s.push_back(non_negative(doc, i, ctx + " entry"));
    return s;
  }
  Ref new_object(Document& doc, const char* type, size_t handle) {
    return doc.add(Value{.kind = Kind::object, .integer = static_cast<int64_t>(handle), .text = type});
  }

  Ref persistent_load(Document& doc, Ref pid) {
    const std::vector<Ref> p = tuple(doc, pid, 5, 6, "a persistent id");
    EMBER_CHECK(doc[p[0]].kind == Kind::string && doc[p[0]].text == "storage", what_,
                ": persistent id of unknown kind ", doc.describe(p[0]), " (expected 'storage')");
    EMBER_CHECK(doc[p[1]].kind == Kind::global, what_, ": storage type is ", doc.describe(p[1]));
    const StorageType* type = find_storage_type(doc[p[1]].text);
    EMBER_CHECK(type, what_, ": '", doc[p[1]].text, "' is not a storage type");
    EMBER_CHECK(type->supported, what_, ": tensors stored as ", type->global,
                " are not supported (ember has f32, f64, bf16, f16, i64, i32, u8 and bool)");
    const Value& key = doc[p[2]];
    EMBER_CHECK(key.kind == Kind::string || key.kind == Kind::integer, what_, ": storage key is ", doc.describe(p[2]));
    StorageRef s;
    s.key = key.kind == Kind::string ? key.text : std::to_string(key.integer);
    s.dtype = type->dtype;
    s.numel = static_cast<uint64_t>(non_negative(doc, p[4], "storage '" + s.key + "' element count"));
    auto [it, fresh] = roots.emplace(s.key, std::make_pair(s.dtype, s.numel));
    (void)fresh;
    if (p.size() == 6 && doc[p[5]].kind != Kind::none) {  // legacy view: (view_key, offset, size)
      const std::vector<Ref>& view = tuple(doc, p[5], 3, 3, "storage view metadata");
      s.elem_offset = static_cast<uint64_t>(non_negative(doc, view[1], "storage view offset"));
      uint64_t size = static_cast<uint64_t>(non_negative(doc, view[2], "storage view size"));
      EMBER_CHECK(s.elem_offset <= s.numel && size <= s.numel - s.elem_offset, what_, ": storage view [",
                  s.elem_offset, ", +", size, ") runs past its storage '", s.key, "' of ", s.numel, " elements");
      s.numel = size;
    }
    storages.push_back(std::move(s));
    return new_object(doc, kStorageObject, storages.size() - 1);
  }

  Ref rebuild_tensor(Document& doc, const std::vector<Ref>& a) {
    EMBER_CHECK(doc[a[0]].kind == Kind::object && doc[a[0]].text == kStorageObject, what_,
                ": a tensor's storage is ", doc.describe(a[0]), ", not a storage");
    TensorRef t;
    t.storage = static_cast<uint32_t>(doc[a[0]].integer);
    t.offset = non_negative(doc, a[1], "a tensor's storage offset");
    t.size = int_tuple(doc, a[2], "a tensor's size");
    t.stride = int_tuple(doc, a[3], "a tensor's stride");
    EMBER_CHECK(t.size.size() == t.stride.size(), what_, ": a tensor has size ", shape_str(t.size), " but stride ",
                shape_str(t.stride));
    tensors.push_back(std::move(t));
    return new_object(doc, kTensorObject, tensors.size() - 1);
  }

  Ref reduce(Document& doc, Ref callable, Ref args_ref) {
    const std::string name = doc[callable].text;
    if (name == "collections.OrderedDict") {  // OrderedDict(): the items follow as SETITEMS
      tuple(doc, args_ref, 0, 0, "OrderedDict()");
      return doc.add(Value{.kind = Kind::dict});
    }
    if (name == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(doc, tuple(doc, args_ref, 6, 7, name));
    if (name == "torch._utils._rebuild_tensor") return rebuild_tensor(doc, tuple(doc, args_ref, 4, 4, name));
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      const size_t n = name.ends_with("_with_state") ? 4 : 3;  // (data, requires_grad, hooks[, state])
      const std::vector<Ref>& a = tuple(doc, args_ref, n, n, name);
      EMBER_CHECK(doc[a[0]].kind == Kind::object && doc[a[0]].text == kTensorObject, what_, ": ", name, " of ",
                  doc.describe(a[0]), ", not a tensor");
      return a[0];  // requires_grad, hooks and state do not matter for the values
    }
    if (name == "torch._tensor._rebuild_from_type_v2") {  // (func, type, args, state)
      const std::vector<Ref> a = tuple(doc, args_ref, 4, 4, name);
      const std::string func = doc[a[0]].kind == Kind::global ? doc[a[0]].text : "";
      const std::string type = doc[a[1]].kind == Kind::global ? doc[a[1]].text : "";
      EMBER_CHECK(func.rfind("torch._utils._rebuild_", 0) == 0, what_, ": ", name, " of ", doc.describe(a[0]));
      EMBER_CHECK(type == "torch.Tensor" || type == "torch.nn.parameter.Parameter", what_, ": ", name,
                  " to type ", doc.describe(a[1]), " (only torch.Tensor and Parameter are supported)");
      return reduce(doc, a[0], a[2]);
    }
    throw make_error(what_, ": '", name, "' cannot be called here (allowed only as a storage or tensor type)");
  }

  void build(Document& doc, Ref object, Ref /*state*/) {
    // OrderedDict's attributes (a state dict's `_metadata`, the layer versions) are not needed.
    EMBER_CHECK(doc[object].kind == Kind::dict, what_, ": BUILD (setting state) on ", doc.describe(object),
                " is not supported");
  }

  std::string what_;
};

// Copies the strided view into contiguous memory, element size e: dst[i...] = src[offset + Σ i_d·stride_d].
void gather(uint8_t* dst, const uint8_t* src, const Shape& size, const Shape& stride, int64_t offset, size_t e) {
  const int64_t numel = shape_numel(size);
  if (numel == 0) return;
  bool contiguous = true;
  int64_t expected = 1;
  for (size_t d = size.size(); d-- > 0;) {
    if (size[d] != 1 && stride[d] != expected) contiguous = false;
    expected *= size[d];
  }
  src += static_cast<size_t>(offset) * e;
  if (contiguous) {
    std::memcpy(dst, src, static_cast<size_t>(numel) * e);
    return;
  }
  const size_t nd = size.size();  // >= 1 here: a 0-d tensor is contiguous
  const int64_t inner = size[nd - 1], inner_stride = stride[nd - 1];
  std::vector<int64_t> index(nd, 0);
  int64_t base = 0;  // Σ index_d·stride_d over the outer dims
  for (int64_t done = 0; done < numel; done += inner) {
    for (int64_t i = 0; i < inner; ++i, dst += e) std::memcpy(dst, src + static_cast<size_t>(base + i * inner_stride) * e, e);
    for (size_t d = nd - 1; d-- > 0;) {  // advance the outer index like an odometer
      base += stride[d];
      if (++index[d] < size[d]) break;
      base -= stride[d] * size[d];
      index[d] = 0;
    }
  }
}

// Checks the tensor against its storage and the storage against its bytes, then copies it out.
Tensor materialize(const TorchObjects& objects, const TensorRef& t, const std::string& name, Bytes root,
                   const std::string& what) {
  const StorageRef& s = objects.storages[t.storage];
  const uint64_t e = dtype_size(s.dtype);
  const std::string where = what + ": tensor '" + name + "'";
  using u128 = unsigned __int128;
  EMBER_CHECK((u128{s.elem_offset} + s.numel) * e <= root.size(), where, ": its storage '", s.key, "' needs ",
              s.numel, " ", dtype_name(s.dtype), " elements from element ", s.elem_offset, " but the file holds ",
              root.size(), " bytes for it");
  u128 numel = 1, last = static_cast<u128>(t.offset);
  for (size_t d = 0; d < t.size.size(); ++d) {
    numel *= static_cast<u128>(t.size[d]);
    if (numel > (u128{1} << 62)) numel = u128{1} << 62;  // saturate; rejected below unless a dim is 0
  }
  if (numel > 0) {
    for (size_t d = 0; d < t.size.size(); ++d) {  // each term < 2^126; saturate so the sum cannot wrap
      last += static_cast<u128>(t.size[d] - 1) * static_cast<u128>(t.stride[d]);
      if (last > UINT64_MAX) last = UINT64_MAX;
    }
    EMBER_CHECK(last < s.numel, where, ": size ", shape_str(t.size), " with stride ", shape_str(t.stride),
                " from storage offset ", t.offset, " reaches element ", static_cast<uint64_t>(last),
                " but storage '", s.key, "' has ", s.numel, " elements");
    EMBER_CHECK(numel * e <= u128{s.numel} * e + kMaxBroadcastBytes, where, ": size ", shape_str(t.size),
                " expands storage '", s.key, "' of ", s.numel, " elements by more than 64 MiB (stride-0 view)");
  }
  Tensor out = empty(t.size, s.dtype);
  gather(static_cast<uint8_t*>(out.data_ptr()), root.data() + s.elem_offset * e, t.size, t.stride, t.offset, e);
  return out;
}

// The dict of tensors: the pickled object itself, or its "state_dict" / "model" entry.
Ref pick_tensor_dict(const Document& doc, Ref root, const std::string& what) {
  EMBER_CHECK(doc[root].kind == Kind::dict, what, ": the pickled object is ", doc.describe(root),
              ", not a dict of tensors");
  const std::vector<Ref>& kv = doc[root].items;
  auto is_tensor = [&](Ref r) { return doc[r].kind == Kind::object && doc[r].text == kTensorObject; };
  Ref first_other = 0;
  bool all_tensors = true;
  for (size_t i = 0; i < kv.size(); i += 2)
    if (!is_tensor(kv[i + 1])) {
      all_tensors = false;
      first_other = static_cast<Ref>(i);
      break;
    }
  if (all_tensors) return root;
  for (const char* wanted : {"state_dict", "model"})
    for (size_t i = 0; i < kv.size(); i += 2)
      if (doc[kv[i]].kind == Kind::string && doc[kv[i]].text == wanted && doc[kv[i + 1]].kind == Kind::dict)
        return kv[i + 1];
  throw make_error(what, ": expected a dict of tensors, or one under 'state_dict' or 'model'; found a dict of ",
                   kv.size() / 2, " items whose key ", doc.describe(kv[first_other]), " holds ",
                   doc.describe(kv[first_other + 1]));
}

// Walks the chosen dict in order; storage_bytes(key) gives a storage's bytes.
template <class StorageBytes>
StateDict collect(const TorchObjects& objects, Ref root, size_t file_size, const std::string& what,
                  StorageBytes&& storage_bytes) {
  const Document& doc = objects.doc;
  const Ref dict = pick_tensor_dict(doc, root, what);
  const std::vector<Ref>& kv = doc[dict].items;
  StateDict out;
  std::unordered_set<std::string> seen;
  const uint64_t budget = 4 * uint64_t{file_size} + kMaxBroadcastBytes;
  uint64_t total = 0;
  for (size_t i = 0; i < kv.size(); i += 2) {
    EMBER_CHECK(doc[kv[i]].kind == Kind::string, what, ": a state dict key is ", doc.describe(kv[i]));
    const std::string& name = doc[kv[i]].text;
    const Value& v = doc[kv[i + 1]];
    EMBER_CHECK(v.kind == Kind::object && v.text == kTensorObject, what, ": '", name, "' holds ",
                doc.describe(kv[i + 1]), ", not a tensor");
    EMBER_CHECK(seen.insert(name).second, what, ": tensor '", name, "' appears twice");
    const TensorRef& t = objects.tensors[static_cast<size_t>(v.integer)];
    out.emplace_back(name, materialize(objects, t, name, storage_bytes(objects.storages[t.storage].key), what));
    total += out.back().second.nbytes();
    EMBER_CHECK(total <= budget, what, ": the tensors up to '", name, "' take ", total,
                " bytes, more than 4x the file's size plus ", kMaxBroadcastBytes >> 20,
                " MiB (many names viewing the same storage?)");
  }
  return out;
}

// ---- the zip format ----------------------------------------------------------------------------

StateDict load_zip(const uint8_t* data, size_t size, const std::string& what) {
  ZipReader zip(data, size, what);
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
    EMBER_CHECK(!pkl, what, ": two object pickles, '", pkl ? pkl->name : "", "' and '", e.name, "'");
    pkl = &e;
  }
  EMBER_CHECK(pkl, what, ": a ZIP archive without '<folder>/data.pkl', so not a torch.save checkpoint");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - std::strlen("data.pkl"));
  EMBER_CHECK(!zip.find(prefix + "constants.pkl"), what,
              ": a TorchScript archive (torch.jit.save); save the model's state_dict() with torch.save instead");
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    Bytes b = zip.read(*order);
    std::string text(b.begin(), b.end());
    EMBER_CHECK(text == "little", what, ": byte order '", text.substr(0, 16),
                "' (only little-endian checkpoints are supported)");
  }
  TorchObjects objects(what);
  const pickle::Unpickled top = pickle::unpickle(objects.doc, zip.read(*pkl), objects.hooks(), what + " (" + pkl->name + ")");
  std::map<std::string, Bytes> records;
  return collect(objects, top.root, size, what, [&](const std::string& key) {
    auto it = records.find(key);
    if (it != records.end()) return it->second;
    const ZipEntry* e = zip.find(prefix + "data/" + key);
    EMBER_CHECK(e, what, ": storage '", key, "' has no record '", prefix, "data/", key, "' in the archive");
    return records.emplace(key, zip.read(*e)).first->second;
  });
}

// ---- the legacy format -------------------------------------------------------------------------

StateDict load_legacy(const uint8_t* data, size_t size, const std::string& what) {
  Bytes all(data, size);
  size_t pos = 0;
  pickle::Hooks plain;  // the preamble pickles hold plain values only
  auto next = [&](Document& doc, const pickle::Hooks& hooks, const char* which) {
    pickle::Unpickled u = pickle::unpickle(doc, all.subspan(pos), hooks, what + " (" + which + ")", {}, pos);
    pos += u.end;
    return u.root;
  };
  Document pre;
  const Ref magic = next(pre, plain, "magic number");
  static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};  // 0x1950a86a20f9469cfc6c
  EMBER_CHECK(pre[magic].kind == Kind::big_integer &&
                  pre[magic].text == std::string(reinterpret_cast<const char*>(kMagic), sizeof kMagic),
              what, ": not a torch.save file (a pickle that does not start with torch's magic number, but with ",
              pre.describe(magic), ")");
  const Ref version = next(pre, plain, "protocol version");
  EMBER_CHECK(pre[version].kind == Kind::integer && pre[version].integer == 1001, what,
              ": legacy protocol version ", pre.describe(version), " (expected 1001)");
  const Ref sys_info = next(pre, plain, "sys_info");
  EMBER_CHECK(pre[sys_info].kind == Kind::dict, what, ": sys_info is ", pre.describe(sys_info), ", not a dict");
  bool little = false, found = false;
  for (size_t i = 0; i + 1 < pre[sys_info].items.size(); i += 2) {
    const Value& k = pre[pre[sys_info].items[i]];
    if (k.kind == Kind::string && k.text == "little_endian") {
      found = true;
      little = pre[pre[sys_info].items[i + 1]].kind == Kind::boolean && pre[pre[sys_info].items[i + 1]].integer;
    }
  }
  EMBER_CHECK(found, what, ": sys_info has no 'little_endian' entry");
  EMBER_CHECK(little, what, ": written on a big-endian machine (only little-endian checkpoints are supported)");

  TorchObjects objects(what);
  const Ref root = next(objects.doc, objects.hooks(), "object");
  Document keys_doc;
  const Ref keys = next(keys_doc, plain, "storage keys");
  EMBER_CHECK(keys_doc[keys].kind == Kind::list, what, ": the storage key list is ", keys_doc.describe(keys));

  // Per key, in list order: u64 element count, then the elements.
  std::map<std::string, Bytes> data_of;
  for (Ref k : keys_doc[keys].items) {
    EMBER_CHECK(keys_doc[k].kind == Kind::string, what, ": a storage key is ", keys_doc.describe(k));
    const std::string& key = keys_doc[k].text;
    auto root_it = objects.roots.find(key);
    EMBER_CHECK(root_it != objects.roots.end(), what, ": storage '", key, "' is listed but no tensor uses it");
    EMBER_CHECK(size - pos >= 8, what, ": truncated file (storage '", key, "' should start at byte ", pos, ")");
    uint64_t count = 0;
    std::memcpy(&count, data + pos, 8);
    pos += 8;
    const uint64_t e = dtype_size(root_it->second.first);
    EMBER_CHECK(count <= (size - pos) / e, what, ": storage '", key, "' claims ", count, " elements of ", e,
                " bytes at byte ", pos, " but only ", size - pos, " bytes are left (truncated file?)");
    EMBER_CHECK(data_of.emplace(key, all.subspan(pos, count * e)).second, what, ": storage '", key,
                "' is listed twice");
    pos += count * e;
  }
  for (const StorageRef& s : objects.storages)
    EMBER_CHECK(dtype_size(s.dtype) == dtype_size(objects.roots.at(s.key).first), what, ": storage '", s.key,
                "' is used with element sizes ", dtype_size(s.dtype), " and ", dtype_size(objects.roots.at(s.key).first));
  return collect(objects, root, size, what, [&](const std::string& key) {
    auto it = data_of.find(key);
    EMBER_CHECK(it != data_of.end(), what, ": storage '", key, "' is used but its data is not in the file");
    return it->second;
  });
}

}  // namespace

StateDict load_torch_checkpoint_from_memory(const uint8_t* data, size_t size, const std::string& name) {
  const std::string what = "load_torch_checkpoint: '" + name + "'";
  EMBER_CHECK(size > 0, what, ": empty file");
  if (looks_like_zip(data, size)) return load_zip(data, size, what);
  if (data[0] == 0x80) return load_legacy(data, size, what);
  throw make_error(what, ": not a torch.save checkpoint (neither a ZIP archive nor a pickle)");
}

StateDict load_torch_checkpoint(const std::string& path) {
  const std::string what = "load_torch_checkpoint: '" + path + "'";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EMBER_CHECK(fd >= 0, what, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw make_error(what, ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw make_error(what, ": empty file");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  EMBER_CHECK(map != MAP_FAILED, what, ": cannot map the file: ", std::strerror(errno));
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{map, size};
  return load_torch_checkpoint_from_memory(static_cast<const uint8_t*>(map), size, path);
}

}  // namespace ember::nn
