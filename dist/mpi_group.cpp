// The MPI backend (built when CMake finds MPI: EMBER_WITH_MPI). The world communicator is
// duplicated for ember, so that ember's collectives never match a message the program sends
// itself; errors are returned rather than aborting, and become exceptions naming the collective
// and MPI's message. MPI is finalised at exit when ember initialised it.
//
// all_reduce_async returns the MPI_Iallreduce's request in a Work (test() is one MPI_Test, which
// also moves the transfer forward); the other collectives are the non-blocking ones too.
// Every collective is MPI's non-blocking one (MPI_Iallreduce, ...) followed by wait(): it polls
// MPI_Test (which drives MPI's progress, as the blocking call would) and, past the timeout,
// throws instead of waiting for ever on a rank that is gone. Polling is tight for the first
// 100 ms (the usual wait: ranks a little out of step), then sleeps 200 µs between polls, so a
// rank that waits long (for the lead's validation) leaves the cores to the others.
#include "dist/process_group.h"
#include "tensor/error.h"

#ifdef EMBER_WITH_MPI
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#endif

namespace ember::dist {

#ifdef EMBER_WITH_MPI

bool have_mpi() { return true; }

namespace {

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, msg, &len);
  throw make_error(what, ": MPI error: ", std::string(msg, len));
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    default: throw make_error("mpi: dtype ", dtype_name(t), " has no MPI type here");
  }
}

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup() : timeout_s_(collective_timeout_seconds()) {  // a bad EMBER_DIST_TIMEOUT throws before MPI starts
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      std::atexit([] {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (!finalised) MPI_Finalize();
      });
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce(const Tensor& t, ReduceOp op) override { all_reduce_async(t, op)->wait(); }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_collective_tensor("all_reduce", t);
    if (op == ReduceOp::average && t.dtype() == DType::i64)
      throw make_error("all_reduce: average of an i64 tensor (use sum)");
    auto work = std::make_unique<AllReduceWork>(*this, t, op == ReduceOp::average ? 1.0 / size_ : 1.0);
    check(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(count(t, "all_reduce")), mpi_type(t.dtype()),
                         MPI_SUM, comm_, &work->req),
          "all_reduce");
    return work;
  }

  void broadcast(const Tensor& t, int root) override {
    check_collective_tensor("broadcast", t);
    if (root < 0 || root >= size_) throw make_error("broadcast: root ", root, " is not a rank of a group of ", size_);
    MPI_Request req;
    check(MPI_Ibcast(t.data_ptr(), static_cast<int>(count(t, "broadcast")), mpi_type(t.dtype()), root, comm_, &req),
          "broadcast");
    wait(req, "broadcast");
  }

  Tensor all_gather(const Tensor& t) override {
    check_collective_tensor("all_gather", t);
    Shape s = t.shape();
    s.insert(s.begin(), size_);
    Tensor out = empty(s, t.dtype());
    const int n = static_cast<int>(count(t, "all_gather"));
    MPI_Request req;
    check(MPI_Iallgather(t.data_ptr(), n, mpi_type(t.dtype()), out.data_ptr(), n, mpi_type(t.dtype()), comm_, &req),
          "all_gather");
    wait(req, "all_gather");
    return out;
  }

  void barrier() override {
    MPI_Request req;
    check(MPI_Ibarrier(comm_, &req), "barrier");
    wait(req, "barrier");
  }

  void abort(int exit_code) override { MPI_Abort(MPI_COMM_WORLD, exit_code); }

  // The ranks sharing this rank's host: MPI_Comm_split_type(shared), a collective of the group.
  void host_placement(int& local_rank, int& local_size) {
    MPI_Comm local = MPI_COMM_NULL;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
  }

 private:
  // An MPI_Iallreduce in flight; the average's division by the size follows its completion.
  struct AllReduceWork final : Work {
    AllReduceWork(MpiGroup& group, Tensor t, double k) : group(group), t(std::move(t)), k(k) {}
    bool test() override {
      if (done) return true;
      int complete = 0;
      check(MPI_Test(&req, &complete, MPI_STATUS_IGNORE), "all_reduce");
      if (complete) finish();
      return done;
    }
    void wait() override {
      if (done) return;
      group.wait(req, "all_reduce");
      finish();
    }
    void finish() {
      if (k != 1.0) scale(t, k);
      done = true;
    }
    MpiGroup& group;
    Tensor t;
    double k;
    MPI_Request req = MPI_REQUEST_NULL;
    bool done = false;
  };

  // MPI counts are int: one call carries at most 2^31 − 1 elements.
  static int64_t count(const Tensor& t, const char* what) {
    if (t.numel() > INT32_MAX) throw make_error(what, ": ", t.numel(), " elements, more than one MPI call carries");
    return t.numel();
  }
  static void scale(const Tensor& t, double k) {
    if (t.dtype() == DType::f32) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(p[i] * k);
    } else {
      double* p = t.data<double>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] *= k;
    }
  }
  // Completes `req`, or throws once it has waited timeout_s_ (0: waits as long as it takes).
  // The request is left pending then: the group cannot be used again, and the program is
  // expected to stop (abort()).
  void wait(MPI_Request& req, const char* what) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    int done = 0;
    bool patient = false;  // waited over 100 ms: sleep between polls
    for (int64_t polls = 0;; ++polls) {
      check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (polls % 256 == 0) {  // the clock is read now and then
        const double waited = std::chrono::duration<double>(Clock::now() - start).count();
        if (timeout_s_ > 0 && waited > timeout_s_)
          throw make_error(what, " on rank ", rank_, " of ", size_, " did not complete within ", timeout_s_,
                           " s (EMBER_DIST_TIMEOUT): another rank has stopped, hangs, or is not calling the same "
                           "collectives");
        patient = waited > 0.1;
      }
      if (patient) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  double timeout_s_ = 0;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

bool mpi_host_placement(ProcessGroup& group, int& local_rank, int& local_size) {
  auto* mpi = dynamic_cast<MpiGroup*>(&group);
  if (!mpi) return false;
  mpi->host_placement(local_rank, local_size);
  return true;
}

std::shared_ptr<ProcessGroup> mpi_world() {
  static std::mutex m;
  static std::shared_ptr<ProcessGroup> world;
  std::lock_guard<std::mutex> lock(m);
  if (!world) world = std::make_shared<MpiGroup>();
  return world;
}

#else

bool have_mpi() { return false; }

bool mpi_host_placement(ProcessGroup&, int&, int&) { return false; }

std::shared_ptr<ProcessGroup> mpi_world() {
  throw make_error("mpi_world: ember was built without MPI (install libopenmpi-dev and rebuild: scripts/setup does)");
}

#endif

}  // namespace ember::dist
