#include "tensor/cuda/cudnn_library.h"

#include "tensor/cuda/cudnn_api.h"
#include "tensor/error.h"

#ifdef EMBER_HAVE_CUDNN_API
#include <dlfcn.h>

#include <cstdlib>
#endif

namespace ember::cuda {

#ifdef EMBER_HAVE_CUDNN_API

namespace {

struct Loaded {
  CudnnLibraryInfo info;
  CudnnApi api;
};

// cuDNN 9 numbers its versions major·10000 + minor·100 + patch, cuDNN 8 major·1000 + ...
size_t cudnn_major(size_t version) { return version >= 10000 ? version / 10000 : version / 1000; }

// dlopen each candidate until one opens and has every function of the table.
Loaded load() {
  Loaded out;
  out.info.compiled = true;
  out.info.header_version = CUDNN_VERSION;
  std::string tried;
  for (const std::string& name : cudnn_library_candidates()) {
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      tried += "\n  " + name + ": " + (e ? e : "not found");
      continue;
    }
    CudnnApi api;
    std::string missing;
#define EMBER_CUDNN_LOOKUP(name)                                              \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(lib, #name));         \
  if (!api.name) missing += std::string(missing.empty() ? "" : ", ") + #name;
    EMBER_CUDNN_FUNCTIONS(EMBER_CUDNN_LOOKUP)
#undef EMBER_CUDNN_LOOKUP
    if (!missing.empty()) {
      tried += "\n  " + name + ": opened, but lacks " + missing;
      dlclose(lib);
      continue;
    }
    const size_t version = api.cudnnGetVersion();
    if (cudnn_major(version) != CUDNN_MAJOR) {
      tried += "\n  " + name + ": version " + std::to_string(version) + ", but ember was built with cudnn.h " +
               std::to_string(CUDNN_VERSION) + " (another major version)";
      dlclose(lib);
      continue;
    }
    out.info.loaded = true;
    out.info.path = name;
    out.info.version = version;
    out.api = api;
    return out;  // kept open for the life of the process
  }
  out.info.error = "cuDNN could not be loaded; tried:" + tried;
  return out;
}

const Loaded& loaded() {
  static const Loaded l = load();  // thread-safe, once
  return l;
}

}  // namespace

std::vector<std::string> cudnn_library_candidates() {
  const std::string own = "libcudnn.so." + std::to_string(CUDNN_MAJOR);
  std::vector<std::string> names;
  if (const char* path = std::getenv("EMBER_CUDNN_LIBRARY"); path && *path) names.push_back(path);
  names.push_back(own);
  for (const char* other : {"libcudnn.so.9", "libcudnn.so.8"})
    if (own != other) names.push_back(other);
#ifdef EMBER_CUDNN_DIR  // where CMake found libcudnn (a pip wheel's directory is not on the loader's path)
  const size_t n = names.size();
  for (size_t i = 0; i < n; ++i)
    if (names[i].find('/') == std::string::npos) names.push_back(std::string(EMBER_CUDNN_DIR) + "/" + names[i]);
#endif
  return names;
}

const CudnnLibraryInfo& cudnn_library() { return loaded().info; }

const CudnnApi& cudnn_api() {
  const Loaded& l = loaded();
  if (!l.info.loaded) throw make_error(l.info.error);
  return l.api;
}

#else  // no CUDA backend, or no cudnn.h at build time

std::vector<std::string> cudnn_library_candidates() { return {}; }

const CudnnLibraryInfo& cudnn_library() {
  static const CudnnLibraryInfo info = [] {
    CudnnLibraryInfo i;
    i.error = "ember was built without cuDNN support (no CUDA backend, or cudnn.h not found at build time)";
    return i;
  }();
  return info;
}

#endif

}  // namespace ember::cuda
