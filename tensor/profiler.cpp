#include "tensor/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "tensor/cuda/runtime.h"

namespace ember {

namespace {
struct Row {
  int64_t calls = 0;
  double ms = 0, flops = 0, bytes = 0;
};
struct Registry {
  std::mutex mu;
  std::map<std::pair<std::string, int>, Row> rows;
  int enabled = 0;  // nesting count of Profiler objects, +1 for EMBER_PROFILE
};
Registry& registry() {
  static Registry r;
  return r;
}
thread_local ProfileScope* tls_innermost = nullptr;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}
void sync_if_cuda() {
  if (cuda::is_available()) cuda::synchronize();
}

std::string render(const std::map<std::pair<std::string, int>, Row>& rows) {
  std::vector<std::pair<std::pair<std::string, int>, Row>> v(rows.begin(), rows.end());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second.ms > b.second.ms; });
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %-9s %8s %11s %10s %10s %10s\n", "op", "direction", "calls", "total ms",
                "ms/call", "GFLOP/s", "GB/s");
  os << line;
  for (auto& [key, r] : v) {
    char gf[32] = "-", gb[32] = "-";
    if (r.flops > 0 && r.ms > 0) std::snprintf(gf, sizeof gf, "%.1f", r.flops / (r.ms * 1e6));
    if (r.bytes > 0 && r.ms > 0) std::snprintf(gb, sizeof gb, "%.1f", r.bytes / (r.ms * 1e6));
    std::snprintf(line, sizeof line, "%-28s %-9s %8lld %11.3f %10.4f %10s %10s\n", key.first.c_str(),
                  key.second == 0 ? "forward" : "backward", static_cast<long long>(r.calls), r.ms, r.ms / r.calls,
                  gf, gb);
    os << line;
  }
  return os.str();
}

struct EnvProfile {
  bool on = false;
  EnvProfile() {
    const char* e = std::getenv("EMBER_PROFILE");
    if (e && std::string(e) != "0") {
      on = true;
      registry().enabled++;
    }
  }
  ~EnvProfile() {
    if (on) std::cerr << "ember profile (EMBER_PROFILE=1):\n" << render(registry().rows);
  }
};
EnvProfile env_profile;
}  // namespace

bool profiling_enabled() { return registry().enabled > 0; }

ProfileScope::ProfileScope(const std::string& op, ProfileDirection dir) : dir_(dir) {
  if (!profiling_enabled()) {
    if (cuda::launch_sync()) {  // name the op in launch errors, nothing else
      tracked_ = true;
      op_ = op;
      parent_ = tls_innermost;
      tls_innermost = this;
    }
    return;
  }
  active_ = true;
  op_ = op;
  sync_if_cuda();
  start_ms_ = now_ms();
  parent_ = tls_innermost;
  tls_innermost = this;
}

ProfileScope::~ProfileScope() {
  if (tracked_) tls_innermost = parent_;
  if (!active_) return;
  try {
    sync_if_cuda();
  } catch (...) {
  }
  double ms = now_ms() - start_ms_;
  tls_innermost = parent_;
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  Row& r = reg.rows[{op_, dir_ == ProfileDirection::forward ? 0 : 1}];
  r.calls++;
  r.ms += ms;
  r.flops += flops_;
  r.bytes += bytes_;
}

void profile_count(double flops, double bytes) {
  if (ProfileScope* s = tls_innermost) {
    s->flops_ += flops;
    s->bytes_ += bytes;
  }
}

std::string current_profile_op() {
  const ProfileScope* s = tls_innermost;
  if (!s) return "";
  return s->op_ + (s->dir_ == ProfileDirection::forward ? ", forward" : ", backward");
}

Profiler::Profiler() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.enabled++;
  reg.rows.clear();
}
Profiler::~Profiler() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.enabled--;
}
std::string Profiler::table() const {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  return render(reg.rows);
}
void Profiler::reset() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.rows.clear();
}

}  // namespace ember
