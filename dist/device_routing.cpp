// Which GPU a rank uses, and the group that sends each tensor to the backend of its device
// (dist/nccl_group.h).
#include <cstdlib>

#include "dist/nccl_group.h"
#include "tensor/cuda/runtime.h"
#include "tensor/env.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

namespace ember::dist {

// ---- which GPU ------------------------------------------------------------------------------

namespace {

// A launcher variable as an int: nullopt when unset, an Error when it is not a number.
std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0 || n > 1 << 20)
    throw make_error(name, "='", v, "': expected a non-negative integer (set by the MPI launcher)");
  return static_cast<int>(n);
}

}  // namespace

std::optional<HostPlacement> host_placement_from_env() {
  // (local rank, local size) variables: Open MPI, MPICH / Intel MPI, Slurm.
  static const char* const pairs[][2] = {{"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                         {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
                                         {"SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"}};
  for (const auto& pair : pairs) {
    const std::optional<int> rank = env_int(pair[0]), size = env_int(pair[1]);
    if (!rank || !size) continue;
    if (*size < 1 || *rank >= *size)
      throw make_error(pair[0], "=", *rank, " and ", pair[1], "=", *size, ": the local rank is not in [0, size)");
    return HostPlacement{*rank, *size};
  }
  return std::nullopt;
}

namespace {
ProcessGroup* cpu_group_of_routed(ProcessGroup& group);  // below: a routed group's CPU group, else nullptr
}  // namespace

HostPlacement host_placement(ProcessGroup& group) {
  if (group.size() == 1) return {};
  if (std::optional<HostPlacement> p = host_placement_from_env()) return *p;
  if (ProcessGroup* cpu = cpu_group_of_routed(group)) return host_placement(*cpu);
  int local_rank = 0, local_size = 1;
  if (mpi_host_placement(group, local_rank, local_size)) return {local_rank, local_size};
  throw make_error("host_placement: rank ", group.rank(), " of ", group.size(), " (", group.backend(),
                   "): no launcher variable (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID) says "
                   "which of its host's ranks it is, and the group cannot tell");
}

int choose_cuda_device(const HostPlacement& p, int device_count, bool allow_shared) {
  EMBER_CHECK(p.local_size >= 1 && p.local_rank >= 0 && p.local_rank < p.local_size, "choose_cuda_device: local rank ",
              p.local_rank, " of ", p.local_size, " is not a rank of its host");
  EMBER_CHECK(device_count > 0, "choose_cuda_device: local rank ", p.local_rank, " asks for a GPU, but this host has none (",
              cuda::unavailable_reason().empty() ? "no CUDA device" : cuda::unavailable_reason(), ")");
  if (p.local_size > device_count && !allow_shared)
    throw make_error("choose_cuda_device: ", p.local_size, " ranks on this host but ", device_count, " GPU",
                     device_count == 1 ? "" : "s", ": NCCL needs one GPU per rank (start at most ", device_count,
                     " rank", device_count == 1 ? "" : "s",
                     " per host: mpirun --map-by ppr:N:node), or set EMBER_DIST_SHARE_GPU=1 to share them (for tests; "
                     "slow, see docs/DISTRIBUTED.md)");
  return p.local_rank % device_count;
}

bool share_gpu_allowed() { return env_flag("EMBER_DIST_SHARE_GPU"); }

Device rank_device(const std::string& spec, ProcessGroup& group) {
  if (spec != "cuda" || group.size() == 1) return Device::parse(spec);
  const HostPlacement p = host_placement(group);
  const int device = choose_cuda_device(p, cuda::device_count(), share_gpu_allowed());
  cuda::set_device(device);
  return Device::cuda(device);
}

CollectiveBackend collective_backend(Device device) {
  return device.is_cuda() ? CollectiveBackend::nccl : CollectiveBackend::cpu;
}

// ---- the routed group ------------------------------------------------------------------------

namespace {

class DeviceRoutedGroup final : public ProcessGroup {
 public:
  DeviceRoutedGroup(std::shared_ptr<ProcessGroup> cpu, std::function<std::shared_ptr<ProcessGroup>(int)> make_cuda)
      : cpu_(std::move(cpu)), make_cuda_(std::move(make_cuda)) {
    EMBER_CHECK(cpu_ != nullptr, "device_routed_group: no CPU group");
    if (!make_cuda_) {
      std::shared_ptr<ProcessGroup> bootstrap = cpu_;
      make_cuda_ = [bootstrap](int device) { return nccl_group(*bootstrap, device); };
    }
  }
  int rank() const override { return cpu_->rank(); }
  int size() const override { return cpu_->size(); }
  std::string backend() const override { return cuda_ ? cpu_->backend() + "+" + cuda_->backend() : cpu_->backend(); }
  void all_reduce(const Tensor& t, ReduceOp op) override { of(t, "all_reduce").all_reduce(t, op); }
  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    return of(t, "all_reduce").all_reduce_async(t, op);
  }
  void broadcast(const Tensor& t, int root) override { of(t, "broadcast").broadcast(t, root); }
  Tensor all_gather(const Tensor& t) override { return of(t, "all_gather").all_gather(t); }
  void barrier() override { cpu_->barrier(); }
  // The CPU group's abort ends every process (MPI_Abort); the NCCL communicator is not aborted
  // first: ncclCommAbort on a wedged communicator may itself wait, and the processes' end frees it.
  void abort(int exit_code) override { cpu_->abort(exit_code); }

 private:
  ProcessGroup& of(const Tensor& t, const char* collective) {
    if (!t.defined() || collective_backend(t.device()) == CollectiveBackend::cpu) return *cpu_;
    const int device = t.device().index;
    if (!cuda_) {
      cuda_ = make_cuda_(device);
      EMBER_CHECK(cuda_ != nullptr, "device_routed_group: no CUDA group was made for cuda:", device);
      cuda_device_ = device;
    } else if (device != cuda_device_) {
      throw make_error(collective, ": tensor on cuda:", device, ", but rank ", rank(), "'s CUDA collectives run on cuda:",
                       cuda_device_, " (one GPU per rank: dist::rank_device)");
    }
    return *cuda_;
  }

 public:
  ProcessGroup& cpu() { return *cpu_; }

 private:
  std::shared_ptr<ProcessGroup> cpu_;
  std::function<std::shared_ptr<ProcessGroup>(int)> make_cuda_;
  std::shared_ptr<ProcessGroup> cuda_;
  int cuda_device_ = -1;
};

ProcessGroup* cpu_group_of_routed(ProcessGroup& group) {
  auto* routed = dynamic_cast<DeviceRoutedGroup*>(&group);
  return routed ? &routed->cpu() : nullptr;
}

}  // namespace

std::shared_ptr<ProcessGroup> device_routed_group(std::shared_ptr<ProcessGroup> cpu,
                                                  std::function<std::shared_ptr<ProcessGroup>(int device)> make_cuda) {
  return std::make_shared<DeviceRoutedGroup>(std::move(cpu), std::move(make_cuda));
}

}  // namespace ember::dist
