// Process groups: the collectives data-parallel training is made of, over ember tensors.
//
//   all_reduce(t, op)   every rank's t becomes Σ_r t_r (sum) or Σ_r t_r / size (average)
//   broadcast(t, root)  every rank's t becomes root's t
//   all_gather(t)       a new tensor (size, t's shape...): row r is rank r's t
//   barrier()           returns on each rank once every rank has called it
//   all_reduce_async(t, op)  starts all_reduce and returns at once: a Work to test() or wait()
//                       for (data parallelism overlaps gradients' all_reduce with backward)
// Every rank calls the same collectives in the same order with tensors of the same shape and
// dtype (a mismatch is the caller's bug).
//
// Failure, never a hang: a collective that has not completed after the group's timeout (a rank
// died, hangs, or calls other collectives) throws an Error naming this rank, the collective and
// how long it waited; EMBER_DIST_TIMEOUT=SECONDS sets it (default 1800; 0 waits forever). A
// program's top-level error handler calls abort() after printing its error, so that the other
// ranks stop at once instead of waiting for a rank that is gone (MPI_Abort: mpirun then ends
// every rank and names the one that aborted). A rank killed outright (SIGKILL) is noticed by
// mpirun itself, which ends the others and names it.
//
// Backends: one process (no MPI at all: every collective is the identity, all_gather adds the
// leading 1; tensors on any device), MPI for CPU tensors (ranks launched by `mpirun -np N ...`;
// built when CMake finds MPI, EMBER_WITH_MPI), and NCCL for CUDA tensors (dist/nccl_group.h; in
// CUDA builds, the library opened at run time). default_group() under mpirun routes each tensor to
// the backend of its device: MPI for CPU tensors, NCCL for CUDA ones. MPI's and NCCL's own engines
// do the communication; ember adds no transport. The MPI backend carries contiguous CPU tensors of
// f32, f64 or i64; anything else is refused with a message that names the collective and what was
// wrong.
#pragma once
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace ember::dist {

enum class ReduceOp { sum, average };

// A collective in flight. wait() returns once it has completed on this rank (its tensor then
// holds the result) or throws past the group's timeout, like the blocking collectives; test()
// returns whether it has completed, without waiting, and lets the backend make progress (MPI
// moves a non-blocking collective forward only inside MPI calls). A Work holds its tensor; it
// must not outlive its group, and one that is dropped before it completed leaves the group
// unusable (MPI cannot cancel a collective): the program is expected to stop.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;
  virtual void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) = 0;  // in place
  // all_reduce, started: `t` must stay untouched until the Work has completed. The ranks start
  // their async and blocking collectives in the same order.
  virtual std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  virtual void broadcast(const Tensor& t, int root = 0) = 0;                   // in place
  virtual Tensor all_gather(const Tensor& t) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the group with `exit_code` (MPI_Abort); for a program's top-level error
  // handler, never called by ember itself. A group of one returns (the program exits as usual).
  virtual void abort(int exit_code) = 0;
};

// A group of one process.
std::shared_ptr<ProcessGroup> single_process_group();

// MPI's world (MPI is initialised on first use and finalised at exit). Throws when ember was
// built without MPI.
std::shared_ptr<ProcessGroup> mpi_world();

// True when this process was started by mpirun (Open MPI's or a PMI launcher's variables).
bool launched_by_mpirun();

// What a program uses: when launched by mpirun, MPI's world with CUDA tensors routed to NCCL
// (device_routed_group(mpi_world()), dist/nccl_group.h), the same object at every call; else
// single_process_group().
std::shared_ptr<ProcessGroup> default_group();

// The collective timeout in seconds from EMBER_DIST_TIMEOUT (default 1800; 0 = none); an Error for
// a value that is not a non-negative number.
double collective_timeout_seconds();

// Whether this build has the MPI backend.
bool have_mpi();

// The MPI backend's check: a contiguous CPU tensor of a dtype it carries (f32, f64, i64).
void check_collective_tensor(const char* collective, const Tensor& t);

// For an MPI group: this rank's index among the ranks on its host, and their count
// (MPI_Comm_split_type, MPI_COMM_TYPE_SHARED); false for any other group.
bool mpi_host_placement(ProcessGroup& group, int& local_rank, int& local_size);

}  // namespace ember::dist
