// CUDA tensors in collectives: the NCCL backend, which GPU a rank uses, and the group that sends
// each tensor to the backend of its device.
//
//   auto group = dist::default_group();            // under mpirun: MPI for CPU tensors, NCCL for CUDA ones
//   Device dev = dist::rank_device("cuda", *group); // this rank's GPU (its local rank), made current
//   model->to(dev);
//   dist::broadcast_module(*model, *group);         // parameters on the GPU: ncclBroadcast
//   dist::GradientSync sync(*model, group);         // buckets: ncclAllReduce (average) on a
//                                                   // communication stream, overlapping backward
//
// One rank per GPU. Each rank of a host takes the GPU of its local rank (Open MPI's
// OMPI_COMM_WORLD_LOCAL_RANK, MPICH's MPI_LOCALRANKID, Slurm's SLURM_LOCALID, else
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)); more ranks than GPUs on a host is an error naming
// both counts. EMBER_DIST_SHARE_GPU=1 lets ranks share GPUs (device = local rank mod GPUs), for
// testing only: NCCL itself refuses two ranks of one communicator on one GPU ("Duplicate GPU
// detected"), so ember then also gives each rank its own NCCL_HOSTID (an NCCL variable that NCCL's
// documentation does not list), which makes NCCL treat the ranks as separate hosts and carry
// their traffic over its network transport (sockets): slow, and untested here (docs/DISTRIBUTED.md).
//
// The NCCL backend is built in every CUDA build that finds nccl.h (dist/CMakeLists.txt); the
// library is opened at run time, on the first CUDA collective (dlopen: EMBER_NCCL_LIBRARY when set,
// else "libnccl.so.2" as the loader finds it, else the file CMake found), so programs start on
// machines without NCCL and only a CUDA collective there fails, with an Error naming the library
// and every path tried. NCCL 2.14 or later (non-blocking communicators).
//
// The communicator is non-blocking (ncclConfig_t.blocking = 0): ember polls every NCCL call and
// every collective's completion with the group's timeout (EMBER_DIST_TIMEOUT, process_group.h),
// and past it, or on an asynchronous NCCL error, aborts the communicator (ncclCommAbort) and
// throws an Error naming the rank and the collective, like the MPI backend; the program's error
// handler then ends every rank (abort()).
//
// Streams. Blocking collectives (all_reduce, broadcast, all_gather) run on ember's current stream
// (cuda::current_stream()), so they follow the kernels that produced their tensor, and return once
// the collective has completed (the host waits, with the timeout). all_reduce_async (GradientSync's
// buckets) runs on the group's own communication stream: it waits (a CUDA event) for everything
// enqueued so far on the current stream, and Work::wait() makes the current stream wait for the
// collective, so the optimizer step that follows reads the averaged gradients. Work::test() asks
// the event without waiting.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dist/process_group.h"
#include "tensor/device.h"

namespace ember::dist {

// ---- which GPU ------------------------------------------------------------------------------

// Where a rank sits on its host: its index among the host's ranks, and how many there are.
struct HostPlacement {
  int local_rank = 0;
  int local_size = 1;
};

// From the launcher's variables (Open MPI, MPICH/Intel MPI, Slurm), or nullopt when none is set;
// an Error for a value that is not a number, or a rank outside [0, size).
std::optional<HostPlacement> host_placement_from_env();

// host_placement_from_env(), else, for an MPI group, MPI_Comm_split_type(MPI_COMM_TYPE_SHARED);
// a group of one is {0, 1}.
HostPlacement host_placement(ProcessGroup& group);

// The GPU of a rank: its local rank. An Error when the host has no GPU, or fewer GPUs than ranks
// (naming both) unless allow_shared, which gives local_rank mod device_count.
int choose_cuda_device(const HostPlacement& p, int device_count, bool allow_shared);

// EMBER_DIST_SHARE_GPU (0 or 1; default 0).
bool share_gpu_allowed();

// The device a rank trains on, for an app's --device: in a group of several ranks "cuda" means
// this rank's GPU (choose_cuda_device over host_placement(group), then made the current device);
// anything else, and everything in a group of one, is Device::parse(spec).
Device rank_device(const std::string& spec, ProcessGroup& group);

// ---- which backend ---------------------------------------------------------------------------

enum class CollectiveBackend { cpu, nccl };
// CUDA tensors go through NCCL, every other one through the CPU group (MPI, or one process).
CollectiveBackend collective_backend(Device device);

// A group of `cpu`'s ranks that hands CPU tensors to `cpu` and CUDA tensors to a CUDA group made
// on the first CUDA collective by make_cuda(device) (default: nccl_group(*cpu, device), a
// collective over `cpu`; every rank reaches it at the same collective, since all ranks issue the
// same collectives in the same order). A rank's CUDA tensors must all be on one device. barrier()
// and abort() are the CPU group's (MPI_Abort ends every process, NCCL's communicator with it).
// default_group() is one of these over MPI's world when launched by mpirun.
std::shared_ptr<ProcessGroup> device_routed_group(
    std::shared_ptr<ProcessGroup> cpu,
    std::function<std::shared_ptr<ProcessGroup>(int device)> make_cuda = nullptr);

// ---- NCCL ------------------------------------------------------------------------------------

// Whether this build has the NCCL backend (a CUDA build that found nccl.h).
bool nccl_built();

// Where the NCCL library is looked for, in order: EMBER_NCCL_LIBRARY alone when set, else
// "libnccl.so.2" (the dynamic loader's search: LD_LIBRARY_PATH, ldconfig), then the file CMake
// found at configure time.
std::vector<std::string> nccl_library_candidates();

// Opens the NCCL library among `candidates` and resolves every function ember calls; returns
// its version code (NCCL_VERSION(major, minor, patch), e.g. 22809). An Error naming the library,
// each candidate with the loader's reason, and how to fix it, when none opens; one naming the
// version when it is older than 2.14; one naming the function when one is missing. Does not keep
// what it opened (nccl_group uses its own copy, opened once from nccl_library_candidates()).
int load_nccl_library(const std::vector<std::string>& candidates);

// A communicator's identity: rank 0 makes it (ncclGetUniqueId), every rank passes the same one.
using NcclUniqueId = std::array<char, 128>;
NcclUniqueId nccl_unique_id();

// This process's rank of an NCCL communicator of `size` ranks on CUDA device `device`: every rank
// calls it with the same id (it returns once all have joined, or throws past the timeout). It
// carries contiguous CUDA tensors on `device` of f32, f64, bf16, f16 (average too), i32, i64 and
// u8 (sum). Its abort() aborts the communicator only (it cannot end other processes).
std::shared_ptr<ProcessGroup> nccl_group(const NcclUniqueId& id, int rank, int size, int device);

// The same, bootstrapped over `bootstrap` (a CPU group of the same ranks): every rank opens the
// library first and the ranks agree that all could (else every rank throws, naming the ranks
// that could not and why), then rank 0's id is broadcast through `bootstrap`.
std::shared_ptr<ProcessGroup> nccl_group(ProcessGroup& bootstrap, int device);

}  // namespace ember::dist
