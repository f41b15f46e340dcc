// broadcast_module and all_reduce_gradients (see data_parallel.h).
#include "dist/data_parallel.h"

#include <cstring>
#include <vector>

#include "tensor/error.h"

namespace ember::dist {

void broadcast_module(nn::Module& model, ProcessGroup& group, int root) {
  for (auto& [name, p] : model.named_parameters()) group.broadcast(p.data(), root);
  for (auto& [name, b] : model.named_buffers()) group.broadcast(b, root);
}

namespace {

// One bucket: parameters of one dtype whose gradients are copied into a flat tensor, reduced,
// and copied back.
void reduce_bucket(const std::vector<Variable>& params, DType dtype, ProcessGroup& group) {
  int64_t total = 0;
  for (const Variable& p : params) total += p.numel();
  Tensor flat = empty({total}, dtype);
  char* dst = static_cast<char*>(flat.data_ptr());
  for (const Variable& p : params) {
    const size_t bytes = p.data().nbytes();
    if (p.grad().defined()) std::memcpy(dst, p.grad().contiguous().data_ptr(), bytes);
    else std::memset(dst, 0, bytes);
    dst += bytes;
  }
  group.all_reduce(flat, ReduceOp::average);
  const char* src = static_cast<const char*>(flat.data_ptr());
  for (Variable p : params) {
    const bool in_place = p.grad().defined() && p.grad().is_contiguous();
    Tensor g = in_place ? p.grad() : empty(p.shape(), dtype);
    std::memcpy(g.data_ptr(), src, g.nbytes());
    src += g.nbytes();
    if (!in_place) p.set_grad(g);
  }
}

}  // namespace

int64_t all_reduce_gradients(nn::Module& model, ProcessGroup& group, int64_t bucket_bytes) {
  if (bucket_bytes <= 0) throw make_error("all_reduce_gradients: bucket_bytes must be positive, got ", bucket_bytes);
  std::vector<Variable> params;
  for (const Variable& p : model.parameters())
    if (p.requires_grad()) {
      if (!p.device().is_cpu()) throw make_error("all_reduce_gradients: parameter on ", p.device().str(), "; only CPU (NCCL is not built yet)");
      params.push_back(p);
    }
  int64_t buckets = 0;
  std::vector<Variable> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    reduce_bucket(bucket, bucket.front().dtype(), group);
    ++buckets;
    bucket.clear();
    bytes = 0;
  };
  for (auto it = params.rbegin(); it != params.rend(); ++it) {  // backward completes the last ones first
    const Variable& p = *it;
    if (!bucket.empty() && (p.dtype() != bucket.front().dtype() || bytes + static_cast<int64_t>(p.data().nbytes()) > bucket_bytes))
      flush();
    bucket.push_back(p);
    bytes += static_cast<int64_t>(p.data().nbytes());
  }
  flush();
  return buckets;
}

}  // namespace ember::dist
