// safetensors: bit-exact round trips for every dtype, the on-disk layout read independently,
// atomic writes, and rejection of each kind of corrupt file.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "nn/safetensors.h"
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::random_tensor;
using ember::testing::values;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ember_safetensors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with `header` as its JSON and `data_bytes` bytes of data after it.
std::string file_with_header(const std::string& header, size_t data_bytes, uint64_t declared_len = 0) {
  uint64_t n = declared_len ? declared_len : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);  // little-endian, by hand
  out += header;
  out.append(data_bytes, '\x01');
  return out;
}

std::string raw(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

// Random contents for any dtype, with NaN, +inf and -inf planted in floating ones.
Tensor sample(DType dtype, const Shape& shape, uint64_t seed) {
  if (dtype == DType::boolean) return gt(random_tensor(shape, DType::f32, -1, 1, seed), 0.0);
  if (!is_floating(dtype)) return random_tensor(shape, DType::f64, -100, 100, seed).to(dtype);
  Tensor t = random_tensor(shape, DType::f64, -3, 3, seed);
  if (t.numel() >= 3) {
    double* p = t.data<double>();
    p[0] = std::numeric_limits<double>::quiet_NaN();
    p[1] = std::numeric_limits<double>::infinity();
    p[2] = -std::numeric_limits<double>::infinity();
  }
  return t.to(dtype);
}

void expect_load_error(const std::string& path, const std::vector<std::string>& pieces) {
  try {
    nn::load_safetensors(path);
    ADD_FAILURE() << "expected an ember::Error loading " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'" + path + "'"), std::string::npos) << "the message should name the file: " << msg;
    for (const auto& piece : pieces) EXPECT_NE(msg.find(piece), std::string::npos) << "'" << piece << "' not in: " << msg;
  }
}

const std::vector<DType> kAllDTypes = {DType::f32, DType::f64, DType::bf16, DType::f16,
                                       DType::i32, DType::i64, DType::u8,   DType::boolean};

}  // namespace

TEST_F(Safetensors, RoundTripIsBitExactForEveryDTypeWithMetadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  uint64_t seed = 1;
  for (DType d : kAllDTypes) {
    tensors.emplace_back(std::string("t_") + dtype_name(d), sample(d, {3, 5}, seed++));
    tensors.emplace_back(std::string("s_") + dtype_name(d), sample(d, {}, seed++));  // a scalar
  }
  tensors.emplace_back("empty", zeros({0, 3}));
  tensors.emplace_back("strided", ember::testing::non_contiguous(random_tensor({4, 6}, DType::f32, -1, 1, 77)));
  std::map<std::string, std::string> meta = {{"epoch", "12"}, {"arch", "efficientnet_b0"}, {"note", "ünïcode ✓"}};
  const std::string p = path("ck.safetensors");
  nn::save_safetensors(p, tensors, meta);

  nn::SafetensorsFile f = nn::load_safetensors(p);
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    EXPECT_EQ(f.tensors[i].first, name);  // file order = the order given
    EXPECT_EQ(f.tensors[i].second.dtype(), t.dtype()) << name;
    EXPECT_EQ(f.tensors[i].second.shape(), t.shape()) << name;
    EXPECT_TRUE(f.tensors[i].second.is_contiguous());
    EXPECT_EQ(raw(f.tensors[i].second), raw(t)) << name << ": bytes differ";  // NaN / inf bit patterns too
  }
  // NaN and inf survived as values.
  auto v = values(f.tensors[0].second);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<double>::infinity());
}

TEST_F(Safetensors, LayoutMatchesTheFormatWhenReadIndependently) {
  Tensor a = random_tensor({2, 3}, DType::f32, -1, 1, 5);
  Tensor b = from_vector<int64_t>({7, -8}, {2});
  Tensor c = random_tensor({5}, DType::bf16, -1, 1, 6);
  const std::string p = path("layout.safetensors");
  nn::save_safetensors(p, {{"a", a}, {"b", b}, {"c", c}}, {{"k", "v"}});

  std::string bytes = read_bytes(p);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  ASSERT_LE(8 + n, bytes.size());
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');  // only spaces pad it
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["k"], "v");
  EXPECT_EQ(j["a"]["dtype"], "F32");
  EXPECT_EQ(j["a"]["shape"], nlohmann::json::array({2, 3}));
  EXPECT_EQ(j["a"]["data_offsets"], nlohmann::json::array({0, 24}));
  EXPECT_EQ(j["b"]["dtype"], "I64");
  EXPECT_EQ(j["b"]["data_offsets"], nlohmann::json::array({24, 40}));
  EXPECT_EQ(j["c"]["dtype"], "BF16");
  EXPECT_EQ(j["c"]["data_offsets"], nlohmann::json::array({40, 50}));
  EXPECT_EQ(bytes.size(), 8 + n + 50);
  std::string data = bytes.substr(8 + n);
  EXPECT_EQ(data.substr(0, 24), raw(a));
  // Little-endian int64 7 and -8, spelled out byte by byte.
  EXPECT_EQ(data.substr(24, 16), std::string("\x07\0\0\0\0\0\0\0\xf8\xff\xff\xff\xff\xff\xff\xff", 16));
  EXPECT_EQ(data.substr(40, 10), raw(c));

  // A file assembled by hand loads too.
  std::string hand = R"({"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  std::string file = file_with_header(hand, 0);
  file += std::string("\x01\0\0\0\xff\xff\xff\xff", 8);
  write_bytes(path("hand.safetensors"), file);
  auto f = nn::load_safetensors(path("hand.safetensors"));
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(values(f.tensors[0].second), (std::vector<double>{1, -1}));
}

TEST_F(Safetensors, FailedWriteLeavesTheOldFileIntact) {
  const std::string p = path("model.safetensors");
  nn::save_safetensors(p, {{"w", random_tensor({4}, DType::f32, -1, 1, 1)}});
  const std::string old_bytes = read_bytes(p);

  // 1. Bad input, caught before anything is written.
  Tensor t = random_tensor({4}, DType::f32);
  EXPECT_THROW(nn::save_safetensors(p, {{"w", t}, {"w", t}}), Error);
  EXPECT_THROW(nn::save_safetensors(p, {{"__metadata__", t}}), Error);
  EXPECT_EQ(read_bytes(p), old_bytes);

  // 2. A write that fails half way: the file-size limit makes write() return EFBIG.
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    nn::save_safetensors(p, {{"big", random_tensor({100000}, DType::f32, -1, 1, 2)}});
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::sigaction(SIGXFSZ, &previous, nullptr);
  EXPECT_NE(message.find("save_safetensors: '" + p + "': write failed"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(p), old_bytes);
  // No temporary file left behind.
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().filename(), "model.safetensors") << "left over: " << entry.path();

  // 3. A successful save replaces it.
  nn::save_safetensors(p, {{"w", random_tensor({4}, DType::f32, -1, 1, 3)}});
  EXPECT_NE(read_bytes(p), old_bytes);
}

TEST_F(Safetensors, RejectsTruncatedFilesAndAbsurdHeaderLengths) {
  write_bytes(path("short"), std::string("\x10\0\0\0", 4));
  expect_load_error(path("short"), {"truncated", "4 bytes"});

  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  write_bytes(path("past_end"), file_with_header(header, 8, /*declared_len=*/100000));
  expect_load_error(path("past_end"), {"header length 100000 is absurd", "runs past the end"});

  write_bytes(path("huge"), file_with_header(header, 8, /*declared_len=*/200ull << 20));
  expect_load_error(path("huge"), {"is absurd (over 100 MB)"});

  // The data section cut short: the tensor's offsets now run past it.
  write_bytes(path("cut"), file_with_header(header, 5));
  expect_load_error(path("cut"), {"tensor 'a'", "out of range", "holds 5 bytes"});

  expect_load_error(path("does_not_exist"), {"cannot open"});
}

TEST_F(Safetensors, RejectsMalformedHeaders) {
  auto check = [&](const std::string& name, const std::string& header, size_t data,
                   const std::vector<std::string>& pieces) {
    write_bytes(path(name), file_with_header(header, data));
    expect_load_error(path(name), pieces);
  };
  check("bad_json", R"({"a": {"dtype": "F32",)", 0, {"not valid JSON"});
  check("not_object", R"([1, 2, 3])", 0, {"not an object", "array"});
  check("unknown_dtype", R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2,
        {"tensor 'a'", "unknown dtype 'F8_E4M3'"});
  check("out_of_range", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 16,
        {"tensor 'a'", "data_offsets [8, 24] out of range", "16 bytes"});
  check("overlap",
        R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
        24, {"'a' [0, 16]", "'b' [8, 24]", "overlapping"});
  check("mismatch", R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24,
        {"tensor 'a'", "shape [2, 3]", "F32 (24 bytes)", "span 20 bytes", "do not match"});
  check("overflow", R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
        {"tensor 'a'", "overflows"});
  // the element count fits, the byte count does not
  check("byte_overflow", R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8,
        {"tensor 'a'", "do not match"});
  // A dim of 2^63 (or a product past 2^63) beside a 0: zero bytes, but not a shape an int64 holds.
  check("huge_dim_zero", R"({"a":{"dtype":"F32","shape":[9223372036854775808,0],"data_offsets":[0,0]}})", 0,
        {"tensor 'a'", "9223372036854775808", "overflows"});
  check("huge_product_zero",
        R"({"a":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", 0,
        {"tensor 'a'", "overflows"});
  check("no_offsets", R"({"a":{"dtype":"F32","shape":[1]}})", 4, {"'a'", "data_offsets"});
  check("negative_dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
        {"'a'", "not a non-negative integer"});
  check("backwards", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4, {"begin after end"});
  check("meta", R"({"__metadata__":{"epoch":3}})", 0, {"__metadata__", "'epoch'", "not a string"});
  check("dup", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
        2, {"names 'a' twice"});
}

TEST_F(Safetensors, ModuleHelpersRoundTrip) {
  struct Small : nn::Module {
    Small(uint64_t seed) {
      register_parameter("weight", random_tensor({3, 2}, DType::f32, -1, 1, seed));
      register_buffer("count", scalar_tensor(static_cast<double>(seed), DType::i64));
    }
  };
  Small a(1), b(2);
  const std::string p = path("small.safetensors");
  nn::save_module(p, a, {{"format", "pt"}});
  EXPECT_EQ(nn::load_safetensors(p).metadata.at("format"), "pt");
  EXPECT_TRUE(nn::load_module(p, b).ok());
  EXPECT_EQ(values(b.parameter("weight").data()), values(a.parameter("weight").data()));
  EXPECT_EQ(b.buffer("count").item(), 1.0);

  nn::Module other;
  other.register_parameter("bias", random_tensor({2}, DType::f32));
  EXPECT_THROW(nn::load_module(p, other, /*strict=*/true), Error);
  auto report = nn::load_module(p, other, /*strict=*/false);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"bias"}));
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"weight", "count"}));
}
