#include "nn/checkpoint.h"

#include <cstdio>
#include <fstream>

#include "nn/efficientnet_pytorch_names.h"
#include "nn/safetensors.h"
#include "nn/torch_checkpoint.h"

namespace ember::nn {

const char* checkpoint_format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::safetensors: return "safetensors";
    case CheckpointFormat::torch_zip: return "torch.save zip";
    case CheckpointFormat::torch_legacy: return "torch.save legacy";
    case CheckpointFormat::unknown: return "unknown";
  }
  return "unknown";
}

CheckpointFormat detect_checkpoint_format(const uint8_t* data, size_t size) {
  if (size >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4) return CheckpointFormat::torch_zip;
  if (size >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5) return CheckpointFormat::torch_legacy;
  if (size >= 9 && data[8] == '{') {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    if (n >= 2) return CheckpointFormat::safetensors;
  }
  return CheckpointFormat::unknown;
}

StateDict load_any_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in, "load_any_checkpoint: cannot open '", path, "'");
  uint8_t head[16] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const size_t got = static_cast<size_t>(in.gcount());
  switch (detect_checkpoint_format(head, got)) {
    case CheckpointFormat::safetensors: return load_safetensors(path).tensors;
    case CheckpointFormat::torch_zip:
    case CheckpointFormat::torch_legacy: return load_torch_checkpoint(path);
    case CheckpointFormat::unknown: break;
  }
  std::string bytes;
  for (size_t i = 0; i < got && i < 8; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", head[i]);
    if (i) bytes += ' ';
    bytes += b;
  }
  throw make_error("load_any_checkpoint: '", path, "': unknown format (", got == 0 ? "empty file" : "starts with " + bytes,
                   "); expected safetensors, a torch.save zip archive or a legacy torch.save pickle");
}

StateDict load_timm_weights(const std::string& path, bool* renamed) {
  StateDict dict = load_any_checkpoint(path);
  const bool rename = looks_like_efficientnet_pytorch(dict);
  if (renamed) *renamed = rename;
  return rename ? efficientnet_pytorch_to_timm(dict) : dict;
}

}  // namespace ember::nn
