// The models the apps and benchmarks build by name, and loading weights into them.
//
//   effnet_b0 … effnet_b7      EfficientNet at its own resolution (224 … 600)
//   effnet_b0_cifar            B0 with the stride-1 stem, for 32×32 inputs
//   tf_efficientnet_lite0 … 4  EfficientNet-Lite (TF padding, ReLU6, no SE; inputs (x − 127) / 128)
//   vit_ti_p4, vit_s_p4        ViT with 4×4 patches on 32×32 inputs (65 tokens)
//   vit_ti16, vit_s16, vit_b16, vit_l16   ViT with 16×16 patches at 224×224
//   effnet_tiny, vit_tiny      small configurations for quick CPU runs (scripts/run's default)
// timm's names are accepted for the same networks: efficientnet_b0 … b7 (= effnet_bN),
// vit_{tiny,small,base,large}_patch16_224 (= vit_{ti,s,b,l}16), effnet_liteN = tf_efficientnet_liteN.
#pragma once
#include <memory>
#include <string>

#include "data/transforms.h"
#include "nn/efficientnet.h"
#include "nn/module.h"
#include "nn/vit.h"

namespace ember::apps {

struct ModelSpec {
  std::string name;
  std::string family;   // "effnet" | "vit"
  int64_t resolution;   // the input size the model expects
  std::string head_prefix;
  data::Normalize normalize = data::Normalize::imagenet();  // what its (pretrained) weights expect
};

struct ModelOptions {
  int64_t num_classes = 20;
  int64_t resolution = 0;      // 0: the model's own
  double dropout = -1;         // < 0: the model's default
  double drop_path = -1;
  double bn_momentum = -1;     // < 0: the model's (PyTorch's 0.1); else every BatchNorm's (timm's --bn-momentum)
  uint64_t seed = 0;
};

// Throws an Error listing the known names when `name` is not one of them.
std::shared_ptr<nn::UnaryModule> make_model(const std::string& name, const ModelOptions& options, ModelSpec* spec = nullptr);
std::string known_models();
// ember's own name for a timm name ("efficientnet_b0" -> "effnet_b0"); other names unchanged.
std::string canonical_model_name(const std::string& name);
// The timm name whose pretrained weights fit `name` ("effnet_lite0" -> "tf_efficientnet_lite0",
// "effnet_b0_cifar" -> "efficientnet_b0": the CIFAR stem has the same weights, stride 1);
// "" for the models without published weights (effnet_tiny, vit_ti_p4, ...).
std::string timm_model_name(const std::string& name);

// Loads weights with timm's names into `model` from safetensors or a torch.save checkpoint
// (efficientnet_pytorch names are renamed: nn::load_timm_weights), or the model of a training
// checkpoint these apps wrote (model.* names; the optimizer state is left out), non-strictly: prints what was missing,
// unexpected or mis-shaped; a classifier of another class count is left freshly initialised
// (replaced), and a ViT pos_embed for another grid is resized bilinearly. Throws when anything
// other than the head failed to load.
void load_pretrained(const std::string& path, nn::UnaryModule& model, const ModelSpec& spec);

// The entries of `d` whose names start with `prefix`, the prefix cut off ("model.", "optim.", "ema."
// of a training checkpoint), in order.
nn::StateDict with_prefix(const nn::StateDict& d, const std::string& prefix);

}  // namespace ember::apps
