// PyTorch checkpoints (.pth / .pt / .bin written by torch.save), read without Python and without
// running any of the pickled code.
//
// torch.save has written two formats:
//
//   zip (PyTorch >= 1.6): a stored ZIP archive (see nn/zip_reader.h) with one top folder, named
//   after the file or "archive":
//     archive/data.pkl        the pickled object (a dict of tensors)
//     archive/data/<key>      one record per storage: its raw little-endian bytes
//     archive/byteorder       "little" or "big" (PyTorch >= 2.1; absent means little)
//     archive/version, archive/.data/...   (ignored)
//
//   legacy (before 1.6, or _use_new_zipfile_serialization=False): pickles back to back, then data
//     pickle 1  the magic number 0x1950a86a20f9469cfc6c
//     pickle 2  the protocol version, 1001
//     pickle 3  sys_info: {"protocol_version": 1001, "little_endian": True, "type_sizes": {...}}
//     pickle 4  the object
//     pickle 5  the list of storage keys, in the order their data follows
//     then per key: the element count (u64, little-endian) and count × element-size raw bytes
//
// Inside the object pickle (see nn/pickle.h) a tensor is
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
//                                   backward_hooks[, metadata])
// (or _rebuild_tensor(storage, offset, size, stride) in old files, wrapped in
// torch._utils._rebuild_parameter[_with_state](tensor, requires_grad, hooks[, state]) for an
// nn.Parameter, or torch._tensor._rebuild_from_type_v2(func, type, args, state)), and the storage
// is a persistent id
//   ('storage', torch.FloatStorage, key, location, numel[, view_metadata])
// where view_metadata (legacy only) is None or (view_key, offset, size) inside the root storage.
// The state dict itself is collections.OrderedDict, with a `_metadata` attribute set by BUILD
// (ignored). Storage types: Float, Double, Half, BFloat16, Long, Int, Byte, Bool.
//
// The only globals allowed are the ones named above (and torch.Tensor and
// torch.nn.parameter.Parameter as _rebuild_from_type_v2's type); any other is refused with an
// Error naming it. Offsets, sizes and strides are checked against the storage and the storage
// against the file before a byte is read (overflow-safe); a view may not be more than 64 MiB
// larger than its storage (stride-0 broadcasts), nor all tensors together more than 4x the file
// plus 64 MiB (one storage under many names). Big-endian files are refused.
//
// The result: contiguous CPU tensors (views and shared storages copied out) in the dict's order.
// The pickled object must be a dict of tensors, or a dict whose value under "state_dict" (or else
// "model") is one, as training scripts often save {"state_dict": ..., "epoch": ...}; anything
// else is an Error saying what was found.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "nn/module.h"

namespace ember::nn {

StateDict load_torch_checkpoint(const std::string& path);
// The same from a buffer holding the whole file; `name` appears in errors.
StateDict load_torch_checkpoint_from_memory(const uint8_t* data, size_t size, const std::string& name);

}  // namespace ember::nn
