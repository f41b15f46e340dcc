// cuDNN, loaded at run time. ember's libraries and apps do not link libcudnn (they start on a
// machine without it: ctest apps_without_cudnn); the cuDNN path of conv2d (EMBER_CONV,
// tensor/ops/conv2d.h) opens it with dlopen on first use and looks up only the functions it
// calls, a table in tensor/cuda/cudnn_api.h. No CUDA or cuDNN types here: this header compiles
// in every build.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace ember::cuda {

struct CudnnLibraryInfo {
  bool compiled = false;  // built with the CUDA backend and cudnn.h (else the rest is empty)
  bool loaded = false;    // the library opened and every function of the table was found
  std::string path;       // the name or path it was opened by
  size_t version = 0;     // cudnnGetVersion() of the loaded library, e.g. 91900
  size_t header_version = 0;  // CUDNN_VERSION of the cudnn.h ember was built with
  std::string error;      // why not loaded: every name tried and what dlopen / dlsym said
};

// Opens cuDNN once per process (thread-safe) and returns what happened; never throws. Tries,
// in order: $EMBER_CUDNN_LIBRARY when set (a path, e.g. PyTorch's
// site-packages/nvidia/cudnn/lib/libcudnn.so.9), libcudnn.so.<major of the build's cudnn.h>,
// the other of libcudnn.so.9 / .8, and the same names in the directory where CMake found
// libcudnn at configure time. A library
// whose major version differs from the header's is refused (the structs differ).
const CudnnLibraryInfo& cudnn_library();

// The names cudnn_library() tries, in order (for its error message and for tests).
std::vector<std::string> cudnn_library_candidates();

}  // namespace ember::cuda
