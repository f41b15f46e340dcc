#!/usr/bin/env python3
"""PyTorch's twin of ember-bench-train: builds the same model, times S training steps (forward,
cross-entropy with label smoothing 0.1, backward, AdamW step) after a warm-up on random data,
and prints "<model> <N> img/s" last.

    python3 bench/compare/torch_bench_train.py --model effnet_b0 --batch 64 --threads 2 --steps 10

Models (built with timm so the architectures match ember's, which follows timm):
  effnet_b0      efficientnet_b0, 20 classes, dropout 0.2, drop-path 0.2, stride-1 stem (32x32 input)
  vit_ti_p4      vit_tiny_patch16_224 with patch 4 at 32x32 (65 tokens), 20 classes, drop-path 0.1 (as ember's)
  effnet_b0_224  efficientnet_b0 at 224x224
  vit_b16        vit_base_patch16_224
  tf_efficientnet_lite0   the fine-tuning recipe's network (ReLU6, no SE, TF "SAME" padding),
                 20 classes, dropout 0.2, drop-path 0.2, at --res (224 unless given; the recipe: 96)
Runs under any Python with torch and timm: Debian's python3-torch (OpenBLAS), or PyPI's current
wheel in the virtual environment bench/compare/setup_torch_venv.sh makes (MKL + oneDNN);
--device cuda, --amp bf16 and --channels-last are for the GPU comparison.
"""
import argparse
import sys
import time

try:
    import torch
    import timm
except ImportError as e:  # pragma: no cover
    sys.exit(f"torch_bench_train: missing Python package ({e.name}): bench/compare/setup_torch_venv.sh, or "
             "apt-get install python3-torch and pip install timm")


def build(name, classes):
    if name == "effnet_b0":
        m = timm.create_model("efficientnet_b0", pretrained=False, num_classes=classes, drop_rate=0.2,
                              drop_path_rate=0.2)
        m.conv_stem.stride = (1, 1)
        return m, 32
    if name == "effnet_b0_224":
        return timm.create_model("efficientnet_b0", pretrained=False, num_classes=classes, drop_rate=0.2,
                                 drop_path_rate=0.2), 224
    if name == "vit_ti_p4":
        # drop_path_rate 0.1: ember's vit_ti_p4 trains with it (ViTConfig's default), so both do the same work.
        return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=classes, patch_size=4,
                                 img_size=32, drop_path_rate=0.1), 32
    if name == "vit_b16":
        return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=classes), 224
    if name == "tf_efficientnet_lite0":
        return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=classes, drop_rate=0.2,
                                 drop_path_rate=0.2), 224
    sys.exit(f"torch_bench_train: unknown model '{name}' (effnet_b0, vit_ti_p4, effnet_b0_224, vit_b16, "
             "tf_efficientnet_lite0)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="effnet_b0")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--res", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, res = build(a.model, a.classes)
    res = a.res or res
    dev = torch.device(a.device)
    model = model.to(dev).train()
    x = torch.randn(a.batch, 3, res, res, device=dev)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    def step():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        last = step()
    s = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    print(f"{a.model}: torch {torch.__version__}, {n} params, batch {a.batch} at {res}x{res}, "
          f"{torch.get_num_threads()} threads, {a.steps} steps in {s:.3f} s (loss {last:.3f})", file=sys.stderr)
    print(f"{a.model} {a.batch * a.steps / s:.1f} img/s")


if __name__ == "__main__":
    main()
