// Any checkpoint ember reads, told apart by its first bytes:
//
//   safetensors         u64 header length N (little-endian), then N bytes of JSON starting '{'
//   torch.save, zip     "PK\3\4" (a ZIP archive; PyTorch >= 1.6)
//   torch.save, legacy  "\x80\x02" (a protocol-2 pickle: the magic number; before PyTorch 1.6)
//
// load_any_checkpoint returns the tensors in file order (nn/safetensors.h and
// nn/torch_checkpoint.h describe each format and what they check); anything else is an Error
// quoting the first bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "nn/module.h"

namespace ember::nn {

enum class CheckpointFormat { safetensors, torch_zip, torch_legacy, unknown };
const char* checkpoint_format_name(CheckpointFormat format);  // "safetensors", "torch zip", ...

// From the first bytes (16 are enough).
CheckpointFormat detect_checkpoint_format(const uint8_t* data, size_t size);

StateDict load_any_checkpoint(const std::string& path);

// Weights for a model under timm's names, from any of those formats: load_any_checkpoint, then
// efficientnet_pytorch names (nn/efficientnet_pytorch_names.h) renamed to timm's. `renamed`, when
// given, tells whether they were. What every app's --init / --pretrained / --weights reads.
StateDict load_timm_weights(const std::string& path, bool* renamed = nullptr);

}  // namespace ember::nn
