// The one-process group, the choice of the default group, and the checks every backend shares.
#include "dist/process_group.h"

#include <cmath>
#include <cstdlib>
#include <mutex>

#include "dist/nccl_group.h"
#include "tensor/error.h"
#include "tensor/ops/shape_ops.h"

namespace ember::dist {

namespace {

// One process: CPU tensors as MPI takes them (a program run alone meets the refusals it would meet
// under mpirun), CUDA tensors contiguous (NCCL's dtypes are checked where NCCL runs).
void check_any_tensor(const char* collective, const Tensor& t) {
  if (t.defined() && t.device().is_cuda()) {
    if (!t.is_contiguous()) throw make_error(collective, ": tensor ", t.shape_str(), " is not contiguous");
    return;
  }
  check_collective_tensor(collective, t);
}

// A collective that completed when it started.
class DoneWork final : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class SingleProcessGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce(const Tensor& t, ReduceOp) override { check_any_tensor("all_reduce", t); }
  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    all_reduce(t, op);
    return std::make_unique<DoneWork>();
  }
  void broadcast(const Tensor& t, int root) override {
    check_any_tensor("broadcast", t);
    if (root != 0) throw make_error("broadcast: root ", root, " is not a rank of a group of 1");
  }
  Tensor all_gather(const Tensor& t) override {
    check_any_tensor("all_gather", t);
    Shape s = t.shape();
    s.insert(s.begin(), 1);
    return t.clone().reshape(s);
  }
  void barrier() override {}
  void abort(int) override {}
};

}  // namespace

void check_collective_tensor(const char* collective, const Tensor& t) {
  if (!t.defined()) throw make_error(collective, ": undefined tensor");
  if (!t.device().is_cpu())
    throw make_error(collective, ": tensor on ", t.device().str(), ": the MPI backend carries CPU tensors (CUDA tensors go "
                     "through NCCL: dist::default_group() routes them there)");
  if (!t.is_contiguous()) throw make_error(collective, ": tensor ", t.shape_str(), " is not contiguous");
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::i64)
    throw make_error(collective, ": dtype ", dtype_name(t.dtype()), " not supported (f32, f64 or i64)");
}

double collective_timeout_seconds() {
  const char* v = std::getenv("EMBER_DIST_TIMEOUT");
  if (!v || !*v) return 1800;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  if (*end != '\0' || !(s >= 0) || !std::isfinite(s))
    throw make_error("EMBER_DIST_TIMEOUT='", v, "': expected a number of seconds >= 0 (0: no timeout)");
  return s;
}

std::shared_ptr<ProcessGroup> single_process_group() { return std::make_shared<SingleProcessGroup>(); }

bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

std::shared_ptr<ProcessGroup> default_group() {
  if (!launched_by_mpirun()) return single_process_group();
  static std::mutex m;
  // Never destroyed: an NCCL communicator must not be torn down after the CUDA runtime at exit.
  static auto* world = new std::shared_ptr<ProcessGroup>();
  std::lock_guard<std::mutex> lock(m);
  if (!*world) *world = device_routed_group(mpi_world());
  return *world;
}

}  // namespace ember::dist
