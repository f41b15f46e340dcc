// libFuzzer harness for the PyTorch checkpoint reader (nn/torch_checkpoint.h): any input must
// either load or throw ember::Error. A crash, a sanitizer report, a leak, a hang or any other
// exception escaping is a bug. Built with -DEMBER_FUZZ=ON and clang; see tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>

#include "nn/efficientnet_pytorch_names.h"
#include "nn/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ember::nn::StateDict dict = ember::nn::load_torch_checkpoint_from_memory(data, size, "fuzz-input");
    volatile uint64_t sink = 0;
    for (const auto& [name, t] : dict) {  // touch every byte that was copied out
      const uint8_t* p = static_cast<const uint8_t*>(t.data_ptr());
      for (size_t i = 0; i < t.nbytes(); ++i) sink = sink + p[i];
    }
    if (ember::nn::looks_like_efficientnet_pytorch(dict)) ember::nn::efficientnet_pytorch_to_timm(dict);
  } catch (const ember::Error&) {
  }
  return 0;
}
