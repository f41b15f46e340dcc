// The MPI backend (built when CMake finds MPI: EMBER_WITH_MPI). The world communicator is
// duplicated for ember, so that ember's collectives never match a message the program sends
// itself; errors are returned rather than aborting, and become exceptions naming the collective
// and MPI's message. MPI is finalised at exit when ember initialised it.
#include "dist/process_group.h"
#include "tensor/error.h"

#ifdef EMBER_WITH_MPI
#include <mpi.h>

#include <cstdlib>
#include <mutex>
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
  MpiGroup() {
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

  void all_reduce(const Tensor& t, ReduceOp op) override {
    check_collective_tensor("all_reduce", t);
    if (op == ReduceOp::average && t.dtype() == DType::i64)
      throw make_error("all_reduce: average of an i64 tensor (use sum)");
    check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(count(t, "all_reduce")), mpi_type(t.dtype()),
                        MPI_SUM, comm_),
          "all_reduce");
    if (op == ReduceOp::average) scale(t, 1.0 / size_);
  }

  void broadcast(const Tensor& t, int root) override {
    check_collective_tensor("broadcast", t);
    if (root < 0 || root >= size_) throw make_error("broadcast: root ", root, " is not a rank of a group of ", size_);
    check(MPI_Bcast(t.data_ptr(), static_cast<int>(count(t, "broadcast")), mpi_type(t.dtype()), root, comm_),
          "broadcast");
  }

  Tensor all_gather(const Tensor& t) override {
    check_collective_tensor("all_gather", t);
    Shape s = t.shape();
    s.insert(s.begin(), size_);
    Tensor out = empty(s, t.dtype());
    const int n = static_cast<int>(count(t, "all_gather"));
    check(MPI_Allgather(t.data_ptr(), n, mpi_type(t.dtype()), out.data_ptr(), n, mpi_type(t.dtype()), comm_),
          "all_gather");
    return out;
  }

  void barrier() override { check(MPI_Barrier(comm_), "barrier"); }

 private:
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
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<ProcessGroup> mpi_world() {
  static std::mutex m;
  static std::shared_ptr<ProcessGroup> world;
  std::lock_guard<std::mutex> lock(m);
  if (!world) world = std::make_shared<MpiGroup>();
  return world;
}

#else

bool have_mpi() { return false; }

std::shared_ptr<ProcessGroup> mpi_world() {
  throw make_error("mpi_world: ember was built without MPI (install libopenmpi-dev and rebuild: scripts/setup does)");
}

#endif

}  // namespace ember::dist
