// broadcast_module and all_reduce_gradients (see data_parallel.h).
#include "dist/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <vector>

#include "nn/layers.h"
#include "tensor/error.h"

namespace ember::dist {

std::vector<std::string> model_layout(const nn::Module& model) {
  std::vector<std::string> lines;
  for (auto& [name, p] : model.named_parameters())
    lines.push_back("parameter " + name + " " + p.data().shape_str() + " " + dtype_name(p.dtype()));
  for (auto& [name, b] : model.named_buffers())
    lines.push_back("buffer " + name + " " + b.shape_str() + " " + dtype_name(b.dtype()));
  return lines;
}

namespace {

// FNV-1a, 64 bits, over the layout's lines (each ended by '\n').
uint64_t layout_hash(const std::vector<std::string>& lines) {
  uint64_t h = 1469598103934665603ull;
  for (const std::string& line : lines) {
    for (unsigned char ch : line + "\n") {
      h ^= ch;
      h *= 1099511628211ull;
    }
  }
  return h;
}

// Rank src's layout on every rank: its length, then its characters one per i64 (small: a line per
// tensor), broadcast.
std::vector<std::string> layout_of_rank(int src, const std::vector<std::string>& mine, ProcessGroup& group) {
  std::string text;
  for (const std::string& line : mine) text += line + "\n";
  Tensor n = from_vector<int64_t>({static_cast<int64_t>(text.size())}, {1});
  group.broadcast(n, src);
  const int64_t len = n.to_vector<int64_t>()[0];
  std::vector<int64_t> chars(static_cast<size_t>(len), 0);
  if (group.rank() == src)
    for (int64_t i = 0; i < len; ++i) chars[i] = static_cast<unsigned char>(text[i]);
  Tensor t = from_vector<int64_t>(chars, {len});
  if (len > 0) group.broadcast(t, src);
  std::vector<std::string> lines(1);
  for (int64_t c : t.to_vector<int64_t>()) {
    if (c == '\n') lines.emplace_back();
    else lines.back() += static_cast<char>(c);
  }
  lines.pop_back();
  return lines;
}

// The first difference between rank a's layout and rank b's, in words.
std::string first_difference(int a, const std::vector<std::string>& la, int b, const std::vector<std::string>& lb) {
  const std::string ra = " on rank " + std::to_string(a), rb = " on rank " + std::to_string(b);
  const size_t n = std::min(la.size(), lb.size());
  for (size_t i = 0; i < n; ++i)
    if (la[i] != lb[i]) return "entry " + std::to_string(i) + " is '" + la[i] + "'" + ra + " but '" + lb[i] + "'" + rb;
  if (la.size() < lb.size()) return "rank " + std::to_string(b) + " has " + std::to_string(lb.size() - n) + " more entries, from '" + lb[n] + "'";
  return "rank " + std::to_string(a) + " has " + std::to_string(la.size() - n) + " more entries, from '" + la[n] + "'";
}

}  // namespace

void check_same_model(const nn::Module& model, ProcessGroup& group, int root) {
  const std::vector<std::string> mine = model_layout(model);
  const uint64_t h = layout_hash(mine);
  int64_t hash_bits;
  std::memcpy(&hash_bits, &h, sizeof h);
  Tensor sig = from_vector<int64_t>({static_cast<int64_t>(mine.size()), hash_bits}, {2});
  const std::vector<int64_t> all = group.all_gather(sig).to_vector<int64_t>();  // (size, 2)
  std::vector<int> differ;
  for (int r = 0; r < group.size(); ++r)
    if (all[2 * r] != all[2 * root] || all[2 * r + 1] != all[2 * root + 1]) differ.push_back(r);
  if (differ.empty()) return;
  // Every rank saw the same table, so every rank takes this path, the broadcasts below match, and
  // every rank's message is the same (whichever rank's reaches the user first says it all).
  const int odd = differ.front();
  const std::vector<std::string> at_root = layout_of_rank(root, mine, group), at_odd = layout_of_rank(odd, mine, group);
  std::ostringstream msg;
  msg << "broadcast_module: the ranks' models differ: rank";
  if (differ.size() > 1) msg << "s";
  for (size_t i = 0; i < differ.size(); ++i) msg << (i ? ", " : " ") << differ[i];
  msg << " ha" << (differ.size() > 1 ? "ve" : "s") << " another model than rank " << root << " (" << at_odd.size()
      << " parameters and buffers on rank " << odd << ", " << at_root.size() << " on rank " << root
      << "); the first difference: " << first_difference(odd, at_odd, root, at_root)
      << ". Every rank must build the same model: the same program, model and flags";
  throw make_error(msg.str());
}

void broadcast_module(nn::Module& model, ProcessGroup& group, int root) {
  check_same_model(model, group, root);
  for (auto& [name, p] : model.named_parameters()) group.broadcast(p.data(), root);
  for (auto& [name, b] : model.named_buffers()) group.broadcast(b, root);
}

void copy_gradients_to_flat(const std::vector<Variable>& params, const Tensor& flat) {
  if (flat.device().is_cpu()) {
    char* dst = static_cast<char*>(flat.data_ptr());
    for (const Variable& p : params) {
      const size_t bytes = p.data().nbytes();
      if (p.grad().defined()) std::memcpy(dst, p.grad().contiguous().data_ptr(), bytes);
      else std::memset(dst, 0, bytes);
      dst += bytes;
    }
    return;
  }
  int64_t offset = 0;
  for (const Variable& p : params) {
    const int64_t n = p.numel();
    Tensor slot = flat.narrow(0, offset, n);
    if (p.grad().defined()) slot.copy_(p.grad().reshape({n}));
    else slot.zero_();
    offset += n;
  }
}

void copy_flat_to_gradients(const Tensor& flat, std::vector<Variable>& params) {
  const bool cpu = flat.device().is_cpu();
  int64_t offset = 0;
  for (Variable& p : params) {
    const int64_t n = p.numel();
    const bool in_place = p.grad().defined() && p.grad().is_contiguous();
    Tensor g = in_place ? p.grad() : empty(p.shape(), p.dtype(), p.device());
    if (cpu) std::memcpy(g.data_ptr(), static_cast<const char*>(flat.data_ptr()) + offset * g.itemsize(), g.nbytes());
    else g.view({n}).copy_(flat.narrow(0, offset, n));
    offset += n;
    if (!in_place) p.set_grad(g);
  }
}

namespace {

// One bucket: parameters of one dtype on one device whose gradients are copied into a flat
// tensor, reduced, and copied back.
void reduce_bucket(std::vector<Variable>& params, ProcessGroup& group) {
  int64_t total = 0;
  for (const Variable& p : params) total += p.numel();
  Tensor flat = empty({total}, params.front().dtype(), params.front().device());
  copy_gradients_to_flat(params, flat);
  group.all_reduce(flat, ReduceOp::average);
  copy_flat_to_gradients(flat, params);
}

}  // namespace

int64_t all_reduce_gradients(nn::Module& model, ProcessGroup& group, int64_t bucket_bytes) {
  if (bucket_bytes <= 0) throw make_error("all_reduce_gradients: bucket_bytes must be positive, got ", bucket_bytes);
  std::vector<Variable> params;
  for (const Variable& p : model.parameters())
    if (p.requires_grad()) params.push_back(p);
  int64_t buckets = 0;
  std::vector<Variable> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    reduce_bucket(bucket, group);
    ++buckets;
    bucket.clear();
    bytes = 0;
  };
  for (auto it = params.rbegin(); it != params.rend(); ++it) {  // backward completes the last ones first
    const Variable& p = *it;
    if (!bucket.empty() && (p.dtype() != bucket.front().dtype() || p.device() != bucket.front().device() ||
                            bytes + static_cast<int64_t>(p.data().nbytes()) > bucket_bytes))
      flush();
    bucket.push_back(p);
    bytes += static_cast<int64_t>(p.data().nbytes());
  }
  flush();
  return buckets;
}

int64_t enable_sync_batch_norm(nn::Module& model, std::shared_ptr<ProcessGroup> group) {
  EMBER_CHECK(group != nullptr, "enable_sync_batch_norm: no process group");
  int64_t layers = 0;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) {
      bn->sync_sum = [group](const Tensor& t) { group->all_reduce(t, ReduceOp::sum); };
      ++layers;
    }
  return layers;
}

}  // namespace ember::dist
