#!/usr/bin/env python3
"""Checkpoint interop with timm: timm's efficientnet_b0 and vit_tiny_patch16_224 with random
weights are saved as safetensors, loaded into ember (ember-logits), and the eval-mode logits of
both on the same input must agree within 1e-4.

    python3 bench/compare/timm_interop.py [--build build]

Needs Debian's python3-torch and, from PyPI, timm and safetensors; without them it says what is
missing and exits 77 (ctest reports the test as skipped). Exits 1 when a model disagrees.
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import timm
    from safetensors.torch import save_file, load_file
except ImportError as e:  # pragma: no cover
    print(f"timm_interop: skipped, missing Python package ({e.name}); install python3-torch (Debian) and "
          f"`pip install timm safetensors`", file=sys.stderr)
    sys.exit(77)  # ctest's SKIP_RETURN_CODE

MODELS = [("efficientnet_b0", "effnet_b0", 224), ("vit_tiny_patch16_224", "vit_ti16", 224)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="ember's build directory")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    exe = os.path.join(args.build, "apps", "ember-logits")
    if not os.path.exists(exe):
        sys.exit(f"timm_interop: {exe} not found; build ember first (scripts/build)")
    torch.manual_seed(0)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for timm_name, ember_name, res in MODELS:
            model = timm.create_model(timm_name, pretrained=False, num_classes=1000).eval()
            # Random, non-trivial BatchNorm statistics so eval mode exercises them.
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.data.uniform_(0.5, 1.5)
                    m.bias.data.uniform_(-0.2, 0.2)
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            wpath, xpath, ypath = (os.path.join(tmp, f"{ember_name}_{s}.safetensors") for s in ("w", "x", "y"))
            save_file(state, wpath)
            x = torch.randn(2, 3, res, res)
            save_file({"x": x}, xpath)
            with torch.no_grad():
                ref = model(x)
            subprocess.run([exe, "--model", ember_name, "--classes", "1000", "--weights", wpath, "--input", xpath,
                            "--out", ypath], check=True)
            got = load_file(ypath)["logits"]
            diff = (got - ref).abs().max().item()
            ok = diff <= args.tol
            failures += not ok
            print(f"{timm_name:24s} -> ember {ember_name:10s} max |logit diff| {diff:.2e}  {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
