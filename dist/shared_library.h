// A shared library opened at run time (dlopen), for the vendor libraries ember uses only when a
// program asks for them (libnccl): the programs link nothing of them and start on machines
// without them; the one that asks gets an Error naming the library, every path tried and why
// each failed.
//
//   SharedLibrary nccl = SharedLibrary::open("NCCL", {"libnccl.so.2", "/usr/local/cuda/lib/libnccl.so.2"},
//                                            "install NCCL or set EMBER_NCCL_LIBRARY");
//   auto* get_version = nccl.symbol<ncclResult_t (*)(int*)>("ncclGetVersion");
#pragma once
#include <string>
#include <vector>

namespace ember::dist {

class SharedLibrary {
 public:
  SharedLibrary() = default;
  // The first of `candidates` (names searched as dlopen does, or paths) that opens; an Error
  // naming `what`, each candidate with dlerror()'s reason, and `hint` when none does. The library
  // stays loaded for the life of the process (never dlclose'd: its threads may outlive us).
  static SharedLibrary open(const std::string& what, const std::vector<std::string>& candidates,
                            const std::string& hint);
  bool loaded() const { return handle_ != nullptr; }
  const std::string& path() const { return path_; }  // the candidate that opened
  // The address of `name`; an Error naming the library and the symbol when it is missing.
  void* raw_symbol(const char* name) const;
  template <class Fn> Fn symbol(const char* name) const { return reinterpret_cast<Fn>(raw_symbol(name)); }

 private:
  void* handle_ = nullptr;
  std::string what_, path_;
};

}  // namespace ember::dist
