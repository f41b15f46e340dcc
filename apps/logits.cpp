// ember-logits: eval-mode logits of a model for an input tensor (safetensors), with weights from
// safetensors or a torch.save checkpoint.
// The interop check (bench/compare/timm_interop.py) uses it to compare ember with timm on the
// same weights and input.
//
//   ember-logits --model effnet_b0 --classes 1000 --weights w.safetensors --input x.safetensors --out y.safetensors
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/common/models.h"
#include "ember/ember.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app{"ember-logits: eval-mode logits for a saved input"};
  std::string model_name, weights, input, out, device = "cpu";
  int64_t classes = 1000, res = 0;
  app.add_option("--model", model_name, apps::known_models())->required();
  app.add_option("--classes", classes)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--res", res, "input resolution (default: the model's)")->check(CLI::NonNegativeNumber);
  app.add_option("--weights", weights, "weights: timm-named safetensors, or a torch.save checkpoint (efficientnet_pytorch names are renamed)")->required()->check(CLI::ExistingFile);
  app.add_option("--input", input, "safetensors with one tensor 'x' (N, 3, H, W)")->required()->check(CLI::ExistingFile);
  app.add_option("--out", out, "safetensors to write with 'logits'")->required();
  app.add_option("--device", device)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    apps::ModelOptions mo;
    mo.num_classes = classes;
    mo.resolution = res;
    apps::ModelSpec spec;
    auto model = apps::make_model(model_name, mo, &spec);
    nn::LoadReport report = model->load_state_dict(nn::load_timm_weights(weights), /*strict=*/false);
    if (!report.ok()) std::fprintf(stderr, "ember-logits: %s\n", report.str().c_str());
    Device dev = Device::parse(device);
    model->to(dev);
    model->eval();
    nn::SafetensorsFile in = nn::load_safetensors(input);
    Tensor x;
    for (auto& [k, t] : in.tensors)
      if (k == "x") x = t;
    if (!x.defined()) throw make_error("ember-logits: '", input, "' has no tensor named 'x'");
    NoGradGuard ng;
    Tensor logits = model->forward(Variable(x.to(DType::f32).to(dev))).data().cpu();
    nn::save_safetensors(out, {{"logits", logits}});
    std::printf("ember-logits: %s logits %s written to %s\n", model_name.c_str(), logits.shape_str().c_str(),
                out.c_str());
    return report.missing.empty() && report.mismatched.empty() ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-logits: error: %s\n", e.what());
    return 1;
  }
}
