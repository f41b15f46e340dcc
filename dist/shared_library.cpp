// SharedLibrary: dlopen / dlsym with errors that say what was tried (see shared_library.h).
#include "dist/shared_library.h"

#include <dlfcn.h>

#include "tensor/error.h"

namespace ember::dist {

SharedLibrary SharedLibrary::open(const std::string& what, const std::vector<std::string>& candidates,
                                  const std::string& hint) {
  std::string tried;
  for (const std::string& c : candidates) {
    if (c.empty()) continue;
    dlerror();  // clear
    if (void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      SharedLibrary lib;
      lib.handle_ = h;
      lib.what_ = what;
      lib.path_ = c;
      return lib;
    }
    const char* why = dlerror();
    tried += "\n  " + c + ": " + (why ? why : "dlopen failed");
  }
  if (tried.empty()) tried = "\n  (no candidate paths)";
  throw make_error(what, " library not found; tried:", tried, hint.empty() ? "" : "\n", hint);
}

void* SharedLibrary::raw_symbol(const char* name) const {
  EMBER_CHECK(handle_ != nullptr, "SharedLibrary: '", name, "' asked of a library that is not open");
  dlerror();
  void* p = dlsym(handle_, name);
  const char* why = dlerror();
  if (p == nullptr || why != nullptr)
    throw make_error(what_, " library ", path_, " has no symbol ", name, why ? std::string(" (") + why + ")" : "",
                     ": it is older than ember needs, or not ", what_);
  return p;
}

}  // namespace ember::dist
