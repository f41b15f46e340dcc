#include "apps/common/models.h"

#include <algorithm>
#include <iostream>

#include "nn/checkpoint.h"
#include "nn/init.h"
#include "nn/safetensors.h"

namespace ember::apps {

std::string known_models() {
  return "effnet_b0 … effnet_b7 (efficientnet_b0 …), effnet_b0_cifar, effnet_tiny, tf_efficientnet_lite0 … lite4 "
         "(effnet_lite0 …), vit_ti_p4, vit_s_p4, vit_ti16, vit_s16, vit_b16, vit_l16 (vit_tiny_patch16_224 …), "
         "vit_tiny";
}

std::string canonical_model_name(const std::string& name) {
  auto starts = [&](const char* p) { return name.rfind(p, 0) == 0; };
  if (starts("efficientnet_b")) return "effnet_" + name.substr(13);
  if (starts("tf_efficientnet_lite")) return "effnet_" + name.substr(16);
  static const std::pair<const char*, const char*> vits[] = {{"vit_tiny_patch16_224", "vit_ti16"},
                                                             {"vit_small_patch16_224", "vit_s16"},
                                                             {"vit_base_patch16_224", "vit_b16"},
                                                             {"vit_large_patch16_224", "vit_l16"}};
  for (auto& [timm, ours] : vits)
    if (name == timm) return ours;
  return name;
}

std::string timm_model_name(const std::string& name) {
  std::string n = canonical_model_name(name);
  if (n.size() > 6 && n.substr(n.size() - 6) == "_cifar") n = n.substr(0, n.size() - 6);
  auto starts = [&](const char* p) { return n.rfind(p, 0) == 0; };
  if (starts("effnet_b") && n.size() == 9) return "efficientnet_" + n.substr(7);
  if (starts("effnet_lite") && n.size() == 12) return "tf_efficientnet_" + n.substr(7);
  static const std::pair<const char*, const char*> vits[] = {{"vit_ti16", "vit_tiny_patch16_224"},
                                                             {"vit_s16", "vit_small_patch16_224"},
                                                             {"vit_b16", "vit_base_patch16_224"},
                                                             {"vit_l16", "vit_large_patch16_224"}};
  for (auto& [ours, timm] : vits)
    if (n == ours) return timm;
  return "";
}

std::shared_ptr<nn::UnaryModule> make_model(const std::string& given, const ModelOptions& o, ModelSpec* spec) {
  const std::string name = canonical_model_name(given);
  ModelSpec s;
  s.name = given;
  std::shared_ptr<nn::UnaryModule> model;
  if (name.rfind("effnet_", 0) == 0) {
    std::string rest = name.substr(7);
    nn::EfficientNetConfig c;
    if (rest == "tiny") {
      // A narrow, shallow B0 for quick runs on two CPU cores.
      c = nn::EfficientNetConfig::from_variant("b0", o.num_classes);
      c.width = 0.5;
      c.depth = 0.34;
      c.resolution = 32;
      c.cifar_stem = true;
      c.dropout = 0.1;
      c.drop_path = 0.05;
    } else {
      bool cifar = rest.size() > 6 && rest.substr(rest.size() - 6) == "_cifar";
      if (cifar) rest = rest.substr(0, rest.size() - 6);
      c = nn::EfficientNetConfig::from_variant(rest, o.num_classes);
      if (cifar) {
        c.cifar_stem = true;
        c.resolution = 32;
      }
    }
    c.num_classes = o.num_classes;
    if (o.resolution > 0) c.resolution = o.resolution;
    if (o.dropout >= 0) c.dropout = o.dropout;
    if (o.drop_path >= 0) c.drop_path = o.drop_path;
    c.seed = o.seed;
    model = std::make_shared<nn::EfficientNet>(c);
    s.family = "effnet";
    s.resolution = c.resolution;
    // TensorFlow's Lite weights were trained on (pixel − 127) / 128 of the 0–255 scale.
    if (rest.rfind("lite", 0) == 0) s.normalize = data::Normalize{{127.0 / 255, 127.0 / 255, 127.0 / 255},
                                                                  {128.0 / 255, 128.0 / 255, 128.0 / 255}};
    s.head_prefix = nn::EfficientNet::kHeadPrefix;
  } else if (name.rfind("vit_", 0) == 0) {
    std::string rest = name.substr(4);
    nn::ViTConfig c;
    if (rest == "tiny") {
      c = nn::ViTConfig::from_variant("tiny", 4, 32, o.num_classes);
      c.depth = 4;
      c.dim = 96;
      c.heads = 3;
      c.drop_path = 0.05;
    } else if (rest == "ti_p4" || rest == "s_p4") {
      c = nn::ViTConfig::from_variant(rest == "ti_p4" ? "tiny" : "small", 4, 32, o.num_classes);
    } else if (rest == "ti16" || rest == "s16" || rest == "b16" || rest == "l16") {
      const char* v = rest == "ti16" ? "tiny" : rest == "s16" ? "small" : rest == "b16" ? "base" : "large";
      c = nn::ViTConfig::from_variant(v, 16, 224, o.num_classes);
    } else {
      throw make_error("model: unknown name '", given, "' (known: ", known_models(), ")");
    }
    if (o.resolution > 0) {
      EMBER_CHECK(o.resolution % c.patch == 0, "model ", name, ": resolution ", o.resolution,
                  " is not a multiple of the patch size ", c.patch);
      c.image_size = o.resolution;
    }
    if (o.dropout >= 0) c.dropout = o.dropout;
    if (o.drop_path >= 0) c.drop_path = o.drop_path;
    c.seed = o.seed;
    model = std::make_shared<nn::ViT>(c);
    s.family = "vit";
    s.resolution = c.image_size;
    s.head_prefix = nn::ViT::kHeadPrefix;
  } else {
    throw make_error("model: unknown name '", given, "' (known: ", known_models(), ")");
  }
  if (o.bn_momentum >= 0 && nn::set_batch_norm_momentum(*model, o.bn_momentum) == 0)
    std::cerr << "--bn-momentum: " << name << " has no BatchNorm layers; nothing changed\n";
  if (spec) *spec = s;
  return model;
}

nn::StateDict with_prefix(const nn::StateDict& d, const std::string& prefix) {
  nn::StateDict out;
  for (auto& [k, t] : d)
    if (k.rfind(prefix, 0) == 0) out.emplace_back(k.substr(prefix.size()), t);
  return out;
}

void load_pretrained(const std::string& path, nn::UnaryModule& model, const ModelSpec& spec) {
  bool renamed = false;
  nn::StateDict file = nn::load_timm_weights(path, &renamed);
  if (renamed) std::cerr << "load: " << path << ": efficientnet_pytorch names renamed to timm's\n";
  // A training checkpoint of these apps (model.*, optim.* and with --ema ema.*): its model.
  const bool training_checkpoint =
      !file.empty() && std::all_of(file.begin(), file.end(), [](const auto& kv) {
        return kv.first.rfind("model.", 0) == 0 || kv.first.rfind("optim.", 0) == 0 || kv.first.rfind("ema.", 0) == 0;
      });
  if (training_checkpoint) {
    file = with_prefix(file, "model.");
    std::cerr << "load: " << path << ": the model of a training checkpoint (its optimizer state is not used)\n";
  }
  nn::StateDict dict;
  auto own = model.state_dict();
  auto own_shape = [&](const std::string& n) -> const Tensor* {
    for (auto& [k, t] : own)
      if (k == n) return &t;
    return nullptr;
  };
  for (auto& [name, t] : file) {
    Tensor v = t;
    if (name == "pos_embed" && spec.family == "vit") {
      const Tensor* mine = own_shape(name);
      if (mine && mine->shape() != t.shape()) {
        int64_t grid = static_cast<nn::ViT&>(model).patch_embed->grid;
        v = nn::resize_pos_embed(t.to(DType::f32), grid);
        std::cerr << "load: resized pos_embed " << t.shape_str() << " -> " << v.shape_str() << "\n";
      }
    }
    dict.emplace_back(name, v);
  }
  nn::LoadReport report = model.load_state_dict(dict, /*strict=*/false);
  auto is_head = [&](const std::string& n) { return n.rfind(spec.head_prefix + ".", 0) == 0; };
  std::vector<std::string> problems;
  for (auto& n : report.missing)
    if (!is_head(n)) problems.push_back("missing " + n);
  for (auto& m : report.mismatched)
    if (!is_head(m.name))
      problems.push_back("mis-shaped " + m.name + " (model " + shape_str(m.expected) + ", file " + shape_str(m.got) + ")");
  if (!report.ok()) std::cerr << "load " << path << ": " << report.str() << "\n";
  EMBER_CHECK(problems.empty(), "load ", path, ": the backbone did not load: ", [&] {
    std::string s;
    for (auto& p : problems) s += (s.empty() ? "" : "; ") + p;
    return s;
  }());
  bool head_replaced = false;
  for (auto& m : report.mismatched) head_replaced = head_replaced || is_head(m.name);
  if (head_replaced) {
    // A new head for fine-tuning starts as timm's reset_classifier makes it: PyTorch's Linear
    // default U(±1/√in), small logits on the pretrained features (not the construction-time
    // init, whose ±1/√classes range gives logits of ±10 on ReLU6 features).
    Tensor w = model.parameter(spec.head_prefix + ".weight").data();
    Tensor b = model.parameter(spec.head_prefix + ".bias").data();
    nn::init::torch_default_(w, &b);
    std::cerr << "load: the classifier's class count differs; it was replaced (freshly initialised)\n";
  }
}

}  // namespace ember::apps
