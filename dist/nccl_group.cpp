// The NCCL backend (see nccl_group.h; which GPU and the routed group: device_routing.cpp). The
// NCCL part is compiled where CMake found nccl.h (EMBER_WITH_NCCL); nccl.h gives the types and the
// enum values, and the functions are called through pointers resolved by dlopen/dlsym, so nothing
// links libnccl.
#include "dist/nccl_group.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "dist/shared_library.h"
#include "tensor/cuda/runtime.h"
#include "tensor/env.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

#ifdef EMBER_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include "tensor/cuda/check.h"
#endif

namespace ember::dist {

// ---- NCCL: finding the library -----------------------------------------------------------------

std::vector<std::string> nccl_library_candidates() {
  if (const char* v = std::getenv("EMBER_NCCL_LIBRARY"); v && *v) return {v};
  std::vector<std::string> c{"libnccl.so.2"};
#ifdef EMBER_NCCL_FALLBACK_PATH
  c.push_back(EMBER_NCCL_FALLBACK_PATH);
#endif
  return c;
}

#ifdef EMBER_WITH_NCCL

namespace {

constexpr const char* kNcclHint =
    "NCCL carries ember's CUDA tensors between ranks: install it (Debian/Ubuntu: libnccl2; it also ships in "
    "PyTorch's nvidia-nccl wheel), or point EMBER_NCCL_LIBRARY at its libnccl.so.2";
constexpr int kMinNcclVersion = 21400;  // 2.14: non-blocking communicators, ncclCommFinalize

// The NCCL functions ember calls, resolved from the opened library (types from nccl.h).
struct NcclApi {
  SharedLibrary lib;
  int version = 0;
  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclGetLastError) last_error = nullptr;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRankConfig) init_rank_config = nullptr;
  decltype(&ncclCommGetAsyncError) async_error = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclCommFinalize) comm_finalize = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
};

NcclApi open_nccl(const std::vector<std::string>& candidates) {
  NcclApi a;
  a.lib = SharedLibrary::open("NCCL", candidates, kNcclHint);
  a.get_version = a.lib.symbol<decltype(a.get_version)>("ncclGetVersion");
  EMBER_CHECK(a.get_version(&a.version) == ncclSuccess, "NCCL library ", a.lib.path(), ": ncclGetVersion failed");
  EMBER_CHECK(a.version >= kMinNcclVersion, "NCCL library ", a.lib.path(), " is version ", a.version / 10000, ".",
              a.version / 100 % 100, ".", a.version % 100, "; ember needs 2.14 or later. ", kNcclHint);
  a.error_string = a.lib.symbol<decltype(a.error_string)>("ncclGetErrorString");
  a.last_error = a.lib.symbol<decltype(a.last_error)>("ncclGetLastError");
  a.get_unique_id = a.lib.symbol<decltype(a.get_unique_id)>("ncclGetUniqueId");
  a.init_rank_config = a.lib.symbol<decltype(a.init_rank_config)>("ncclCommInitRankConfig");
  a.async_error = a.lib.symbol<decltype(a.async_error)>("ncclCommGetAsyncError");
  a.comm_abort = a.lib.symbol<decltype(a.comm_abort)>("ncclCommAbort");
  a.comm_finalize = a.lib.symbol<decltype(a.comm_finalize)>("ncclCommFinalize");
  a.comm_destroy = a.lib.symbol<decltype(a.comm_destroy)>("ncclCommDestroy");
  a.all_reduce = a.lib.symbol<decltype(a.all_reduce)>("ncclAllReduce");
  a.broadcast = a.lib.symbol<decltype(a.broadcast)>("ncclBroadcast");
  a.all_gather = a.lib.symbol<decltype(a.all_gather)>("ncclAllGather");
  return a;
}

// Opened once per process; a failure is not cached (the next call tries again and says why again).
const NcclApi& nccl() {
  static std::mutex m;
  static std::unique_ptr<NcclApi> api;
  std::lock_guard<std::mutex> lock(m);
  if (!api) api = std::make_unique<NcclApi>(open_nccl(nccl_library_candidates()));
  return *api;
}

ncclDataType_t nccl_type(DType t, const char* collective) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::u8: return ncclUint8;
    default: throw make_error(collective, ": dtype ", dtype_name(t), " not supported by NCCL here (f32, f64, bf16, f16, i32, i64, u8)");
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class NcclGroup final : public ProcessGroup {
 public:
  NcclGroup(const NcclUniqueId& id, int rank, int size, int device)
      : api_(nccl()), timeout_s_(collective_timeout_seconds()), rank_(rank), size_(size), device_(device) {
    EMBER_CHECK(size >= 1 && rank >= 0 && rank < size, "nccl_group: rank ", rank, " is not a rank of a group of ", size);
    cuda::set_device(device);  // checks the index
    ncclUniqueId uid;
    static_assert(sizeof(uid.internal) == sizeof(NcclUniqueId), "ncclUniqueId is 128 bytes");
    std::memcpy(uid.internal, id.data(), id.size());
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // every call returns at once; ember polls with its timeout
    const ncclResult_t r = api_.init_rank_config(&comm_, size, uid, rank, &config);
    if (r != ncclSuccess && r != ncclInProgress) {
      if (comm_) api_.comm_abort(comm_);
      comm_ = nullptr;
      fail("ncclCommInitRankConfig", r);
    }
    settle("ncclCommInitRankConfig (joining the other ranks)");
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
  }
  ~NcclGroup() override {
    if (comm_ && !aborted_) {
      // Finalize (flushes pending work) then destroy; bounded, and never throwing: a communicator
      // that does not finalize in time is aborted.
      ncclResult_t r = api_.comm_finalize(comm_);
      const auto t0 = std::chrono::steady_clock::now();
      ncclResult_t state = r;
      while (state == ncclInProgress && seconds_since(t0) < 10) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        api_.async_error(comm_, &state);
      }
      if (state == ncclSuccess) api_.comm_destroy(comm_);
      else api_.comm_abort(comm_);
    }
    if (comm_stream_) cudaStreamDestroy(comm_stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(const Tensor& t, ReduceOp op) override {
    const ncclRedOp_t nop = red_op(t, op);
    cudaStream_t s = on_device_stream();
    enqueue("all_reduce", [&] {
      return api_.all_reduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype(), "all_reduce"),
                             nop, comm_, s);
    });
    complete(s, "all_reduce");
  }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    const ncclRedOp_t nop = red_op(t, op);
    cudaStream_t s = on_device_stream();
    auto work = std::make_unique<NcclWork>(*this, t);
    // The communication stream waits for what the current stream has enqueued (t's producers).
    EMBER_CUDA_CHECK(cudaEventRecord(work->ready, s));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, work->ready, 0));
    enqueue("all_reduce", [&] {
      return api_.all_reduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype(), "all_reduce"),
                             nop, comm_, comm_stream_);
    });
    EMBER_CUDA_CHECK(cudaEventRecord(work->done, comm_stream_));
    return work;
  }

  void broadcast(const Tensor& t, int root) override {
    check("broadcast", t);
    if (root < 0 || root >= size_) throw make_error("broadcast: root ", root, " is not a rank of a group of ", size_);
    cudaStream_t s = on_device_stream();
    enqueue("broadcast", [&] {
      return api_.broadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype(), "broadcast"),
                            root, comm_, s);
    });
    complete(s, "broadcast");
  }

  Tensor all_gather(const Tensor& t) override {
    check("all_gather", t);
    Shape shape = t.shape();
    shape.insert(shape.begin(), size_);
    cudaStream_t s = on_device_stream();
    Tensor out = empty(shape, t.dtype(), t.device());
    enqueue("all_gather", [&] {
      return api_.all_gather(t.data_ptr(), out.data_ptr(), static_cast<size_t>(t.numel()),
                             nccl_type(t.dtype(), "all_gather"), comm_, s);
    });
    complete(s, "all_gather");
    return out;
  }

  // NCCL has no barrier: an all_reduce of one value, waited for.
  void barrier() override {
    cuda::set_device(device_);
    if (!token_.defined()) token_ = zeros({1}, DType::f32, Device::cuda(device_));
    all_reduce(token_, ReduceOp::sum);
  }

  void abort(int) override { abort_comm(); }

 private:
  // An all_reduce on the communication stream: `ready` (on the caller's stream) before it, `done` after.
  struct NcclWork final : Work {
    NcclWork(NcclGroup& group, Tensor t) : group(group), t(std::move(t)) {
      EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
      EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    }
    ~NcclWork() override {
      cudaEventDestroy(ready);  // released by CUDA once recorded work completes
      cudaEventDestroy(done);
    }
    bool test() override {
      if (finished) return true;
      const cudaError_t e = cudaEventQuery(done);
      if (e == cudaErrorNotReady) {
        group.check_async("all_reduce");
        return false;
      }
      EMBER_CUDA_CHECK(e);
      finish();
      return true;
    }
    void wait() override {
      if (finished) return;
      group.wait_event(done, "all_reduce");
      finish();
    }
    // From here the caller's current stream runs after the collective.
    void finish() {
      cuda::set_device(group.device_);
      EMBER_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream_of(cuda::current_stream()), done, 0));
      finished = true;
    }
    NcclGroup& group;
    Tensor t;  // kept alive until the collective is over
    cudaEvent_t ready = nullptr, done = nullptr;
    bool finished = false;
  };

  void check(const char* collective, const Tensor& t) const {
    EMBER_CHECK(!aborted_, collective, ": rank ", rank_, "'s NCCL communicator was aborted after an earlier failure; the "
                "group cannot be used again (stop the program)");
    EMBER_CHECK(t.defined(), collective, ": undefined tensor");
    EMBER_CHECK(t.device().is_cuda() && t.device().index == device_, collective, ": tensor on ", t.device().str(),
                ", but this NCCL group (rank ", rank_, " of ", size_, ") is on cuda:", device_);
    EMBER_CHECK(t.is_contiguous(), collective, ": tensor ", t.shape_str(), " is not contiguous");
    nccl_type(t.dtype(), collective);
  }
  ncclRedOp_t red_op(const Tensor& t, ReduceOp op) const {
    check("all_reduce", t);
    if (op == ReduceOp::sum) return ncclSum;
    EMBER_CHECK(is_floating(t.dtype()), "all_reduce: average of a ", dtype_name(t.dtype()), " tensor (use sum)");
    return ncclAvg;
  }
  cudaStream_t on_device_stream() const {
    cuda::set_device(device_);
    return cuda::stream_of(cuda::current_stream());
  }

  // "all_reduce on rank 1 of 2 (NCCL, cuda:1): <NCCL's error>: <its last message>".
  std::string describe(const std::string& what, ncclResult_t r) const {
    const char* last = api_.last_error(comm_);
    std::string msg = what + " on rank " + std::to_string(rank_) + " of " + std::to_string(size_) + " (NCCL, cuda:" +
                      std::to_string(device_) + "): " + api_.error_string(r);
    if (last && *last) msg += ": " + std::string(last);
    if (r == ncclInvalidUsage && last && std::strstr(last, "Duplicate GPU"))
      msg += " (NCCL allows one rank per GPU in a communicator; see EMBER_DIST_SHARE_GPU in docs/DISTRIBUTED.md)";
    return msg;
  }
  [[noreturn]] void fail(const std::string& what, ncclResult_t r) const { throw make_error(describe(what, r)); }
  // Aborts the communicator (ncclCommAbort frees it); the group refuses every later collective.
  void abort_comm() {
    if (comm_ && !aborted_) {
      aborted_ = true;
      api_.comm_abort(comm_);
      comm_ = nullptr;
    }
  }
  // An asynchronous error (a remote rank failed, a network error) ends the group.
  void check_async(const char* what) {
    EMBER_CHECK(!aborted_, what, ": rank ", rank_, "'s NCCL communicator was aborted after an earlier failure");
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = api_.async_error(comm_, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclSuccess || state == ncclInProgress) return;
    const std::string msg = describe(what, state);
    abort_comm();
    throw make_error(msg);
  }
  // Polls `done()` until it is true, checking NCCL's asynchronous error; past the timeout aborts
  // the communicator and throws. Tight for the first 100 ms, then 200 µs sleeps (like mpi_group.cpp).
  template <class Done>
  void poll(const char* what, Done done) {
    const auto t0 = std::chrono::steady_clock::now();
    bool patient = false;
    for (int64_t polls = 0;; ++polls) {
      if (done()) return;
      check_async(what);
      if (polls % 256 == 0) {
        const double waited = seconds_since(t0);
        if (timeout_s_ > 0 && waited > timeout_s_) {
          abort_comm();
          throw make_error(what, " on rank ", rank_, " of ", size_, " (NCCL) did not complete within ", timeout_s_,
                           " s (EMBER_DIST_TIMEOUT): another rank has stopped, hangs, or is not calling the same "
                           "collectives; the communicator was aborted");
        }
        patient = waited > 0.1;
      }
      if (patient) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  // A non-blocking communicator's call has returned: wait until NCCL has finished issuing it.
  void settle(const char* what) {
    poll(what, [&] {
      ncclResult_t state = ncclInProgress;
      const ncclResult_t r = api_.async_error(comm_, &state);
      return r == ncclSuccess && state == ncclSuccess;
    });
  }
  template <class Call>
  void enqueue(const char* what, Call call) {
    const ncclResult_t r = call();
    if (r == ncclInProgress) settle(what);
    else if (r != ncclSuccess) {
      abort_comm();
      fail(what, r);
    }
  }
  void wait_event(cudaEvent_t e, const char* what) {
    poll(what, [&] {
      const cudaError_t q = cudaEventQuery(e);
      if (q == cudaErrorNotReady) return false;
      EMBER_CUDA_CHECK(q);
      return true;
    });
  }
  // Waits, on the host, for everything enqueued on `s` so far (the collective just issued).
  void complete(cudaStream_t s, const char* what) {
    cudaEvent_t e = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    try {
      EMBER_CUDA_CHECK(cudaEventRecord(e, s));
      wait_event(e, what);
    } catch (...) {
      cudaEventDestroy(e);
      throw;
    }
    cudaEventDestroy(e);
  }

  const NcclApi& api_;
  double timeout_s_;
  int rank_, size_, device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;
  bool aborted_ = false;
  Tensor token_;
};

}  // namespace

bool nccl_built() { return true; }

int load_nccl_library(const std::vector<std::string>& candidates) { return open_nccl(candidates).version; }

NcclUniqueId nccl_unique_id() {
  const NcclApi& api = nccl();
  ncclUniqueId uid;
  const ncclResult_t r = api.get_unique_id(&uid);
  EMBER_CHECK(r == ncclSuccess, "ncclGetUniqueId: ", api.error_string(r), ": ", api.last_error(nullptr));
  NcclUniqueId id;
  std::memcpy(id.data(), uid.internal, id.size());
  return id;
}

std::shared_ptr<ProcessGroup> nccl_group(const NcclUniqueId& id, int rank, int size, int device) {
  return std::make_shared<NcclGroup>(id, rank, size, device);
}

#else  // no NCCL backend

bool nccl_built() { return false; }

namespace {
Error no_nccl(const char* what) {
  return make_error(what, ": ember was built without NCCL (", cuda::built() ? "nccl.h was not found at configure time"
                                                                            : "a CPU-only build",
                    "), so CUDA tensors cannot take part in collectives");
}
}  // namespace

int load_nccl_library(const std::vector<std::string>&) { throw no_nccl("load_nccl_library"); }
NcclUniqueId nccl_unique_id() { throw no_nccl("nccl_unique_id"); }
std::shared_ptr<ProcessGroup> nccl_group(const NcclUniqueId&, int, int, int) { throw no_nccl("nccl_group"); }

#endif

namespace {

// EMBER_DIST_SHARE_GPU: a rank whose GPU another local rank also uses gets its own NCCL host id
// (NCCL_HOSTID, unless the user set one), so that NCCL does not refuse the pair (nccl_group.h).
void give_shared_gpu_rank_its_own_host_id(ProcessGroup& bootstrap) {
  if (!share_gpu_allowed() || std::getenv("NCCL_HOSTID")) return;
  const HostPlacement p = host_placement(bootstrap);
  if (p.local_size <= cuda::device_count()) return;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string id = std::string(host) + "-ember-rank-" + std::to_string(bootstrap.rank());
  setenv("NCCL_HOSTID", id.c_str(), 1);
}

}  // namespace

std::shared_ptr<ProcessGroup> nccl_group(ProcessGroup& bootstrap, int device) {
  // Every rank opens the library; all learn whether all could, so none waits for one that failed.
  std::string why;
  try {
    if (!nccl_built()) load_nccl_library({});  // throws the "built without NCCL" error
    else load_nccl_library(nccl_library_candidates());
  } catch (const std::exception& e) {
    why = e.what();
  }
  const Tensor failed = bootstrap.all_gather(from_vector<int64_t>({why.empty() ? 0 : 1}, {1}));
  const std::vector<int64_t> f = failed.to_vector<int64_t>();
  std::string ranks;
  for (int r = 0; r < bootstrap.size(); ++r)
    if (f[r]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  if (!ranks.empty())
    throw make_error("nccl_group: a collective on a CUDA tensor needs NCCL, which rank", ranks.find(',') == std::string::npos ? " " : "s ",
                     ranks, " could not open", why.empty() ? std::string() : ": " + why);
  give_shared_gpu_rank_its_own_host_id(bootstrap);
  // Rank 0's id (16 int64 words), through the CPU group.
  NcclUniqueId id{};
  if (bootstrap.rank() == 0) id = nccl_unique_id();
  std::vector<int64_t> words(id.size() / sizeof(int64_t));
  std::memcpy(words.data(), id.data(), id.size());
  Tensor t = from_vector<int64_t>(words, {static_cast<int64_t>(words.size())});
  bootstrap.broadcast(t, 0);
  std::memcpy(id.data(), t.data_ptr(), id.size());
  return nccl_group(id, bootstrap.rank(), bootstrap.size(), device);
}

}  // namespace ember::dist
