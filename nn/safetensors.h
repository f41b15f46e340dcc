// safetensors checkpoints (the Hugging Face format, readable by safetensors / timm / PyTorch):
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  JSON header, padded with spaces so the data starts at a multiple of 8:
//                {"conv_stem.weight": {"dtype": "F32", "shape": [32, 3, 3, 3], "data_offsets": [0, 3456]},
//                 ...,
//                 "__metadata__": {"epoch": "12", ...}}
//   [rest]     raw little-endian tensor bytes; data_offsets [begin, end) count from the start of
//              this section
//
// dtypes: F32 F64 BF16 F16 I32 I64 U8 BOOL. Tensors on any device and with any strides are
// written as contiguous host copies; loading gives contiguous CPU tensors.
//
// Saving is atomic: the file is written to "<path>.tmp.<pid>", fsync'd, then renamed over
// <path>, so a crash or a failed write leaves the previous checkpoint intact.
// Loading checks everything before trusting it and throws an Error naming the file and the
// problem: a truncated file, an absurd header length (beyond the file or over 100 MB), JSON that
// does not parse or has the wrong structure, an unknown dtype, and data offsets that run past
// the data, overlap another tensor's, or do not span shape × dtype size bytes.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace ember::nn {

struct SafetensorsFile {
  StateDict tensors;  // in file order (by data offset): for files saved here, the order given to save
  std::map<std::string, std::string> metadata;
};

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

// "F32" <-> DType::f32, ... (throws for names outside the list above).
const char* safetensors_dtype_name(DType dtype);
DType safetensors_dtype_from_name(const std::string& name);

// A module's state_dict() to a file, and back through load_state_dict (see module.h for strict).
void save_module(const std::string& path, const Module& module, const std::map<std::string, std::string>& metadata = {});
LoadReport load_module(const std::string& path, Module& module, bool strict = true);

}  // namespace ember::nn
