// ember-convert: any checkpoint ember reads (safetensors, torch.save zip or legacy .pth/.pt/.bin)
// to a timm-named safetensors file. EfficientNet weights in efficientnet_pytorch's names
// (_conv_stem, _blocks.N, _fc ...) are renamed to timm's (conv_stem, blocks.S.I, classifier ...)
// unless --no-rename is given; other names are kept. The output is written atomically.
//
//   ember-convert efficientnet-lite0-57934424.pth lite0.safetensors
#include <CLI/CLI.hpp>
#include <cstdio>

#include "nn/checkpoint.h"
#include "nn/efficientnet_pytorch_names.h"
#include "nn/safetensors.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app{"ember-convert: a PyTorch or safetensors checkpoint to timm-named safetensors"};
  std::string in, out;
  bool no_rename = false;
  app.add_option("IN", in, "checkpoint: .safetensors, or torch.save .pth/.pt/.bin (zip or legacy)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("OUT", out, "safetensors file to write")->required();
  app.add_flag("--no-rename", no_rename, "keep the names as they are (no efficientnet_pytorch -> timm renaming)");
  CLI11_PARSE(app, argc, argv);
  try {
    nn::StateDict dict = nn::load_any_checkpoint(in);
    if (dict.empty()) throw make_error("'", in, "' holds no tensors");
    const bool rename = !no_rename && nn::looks_like_efficientnet_pytorch(dict);
    if (rename) dict = nn::efficientnet_pytorch_to_timm(dict);
    nn::save_safetensors(out, dict, {{"converted_from", in}});
    int64_t params = 0;
    for (const auto& [name, t] : dict) params += t.numel();
    std::printf("ember-convert: %zu tensors, %lld parameters (buffers included)%s\n", dict.size(), static_cast<long long>(params),
                rename ? "; renamed from efficientnet_pytorch to timm names" : "");
    std::printf("  first: %s %s\n  last:  %s %s\n", dict.front().first.c_str(), dict.front().second.shape_str().c_str(),
                dict.back().first.c_str(), dict.back().second.shape_str().c_str());
    std::printf("  written to %s\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-convert: error: %s\n", e.what());
    return 1;
  }
}
