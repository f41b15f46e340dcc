#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (gloo, CPU) twin of `mpirun -np N ember-bench-train`: N ranks of
T threads each train the same model as bench/compare/torch_bench_train.py (its builders: timm's
efficientnet_b0 with the stride-1 stem, vit_tiny with patch 4, ...) on their 1/N share of a global
batch of random images: forward, cross-entropy with label smoothing 0.1, backward (DDP all-reduces
the gradients in buckets during it), AdamW step. After a warm-up, S steps are timed between two
barriers; rank 0 prints "<model> <N> img/s" (of the global batch) last.

    # spawns its own N processes, gloo on 127.0.0.1
    python3 bench/compare/torch_ddp_bench.py --model effnet_b0 --batch 128 --ranks 2 --threads 1
    # or under torchrun (its RANK / WORLD_SIZE / MASTER_ADDR; --ranks is then ignored)
    torchrun --nproc-per-node 2 bench/compare/torch_ddp_bench.py --model vit_ti_p4 --threads 1

BatchNorm is per rank (no SyncBatchNorm), DDP's default, as in ember-bench-train.
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch.nn.parallel import DistributedDataParallel
    from torch_bench_train import build  # the same models as the one-process comparison
except ImportError as e:  # pragma: no cover
    sys.exit(f"torch_ddp_bench: missing Python package ({e.name}): bench/compare/setup_torch_venv.sh")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="effnet_b0")
    ap.add_argument("--batch", type=int, default=128, help="the global batch (split over the ranks)")
    ap.add_argument("--ranks", type=int, default=2, help="processes to spawn (without torchrun)")
    ap.add_argument("--threads", type=int, default=1, help="threads per rank")
    ap.add_argument("--res", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--bucket-mb", type=float, default=25, help="DDP's bucket_cap_mb")
    a = ap.parse_args()
    for name in ("batch", "ranks", "threads", "steps"):
        if getattr(a, name) <= 0:
            ap.error(f"--{name} must be positive, got {getattr(a, name)}")
    if a.warmup < 0:
        ap.error(f"--warmup must be >= 0, got {a.warmup}")
    return a


def worker(rank, world, a):
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        if a.batch % world:
            raise SystemExit(f"torch_ddp_bench: --batch {a.batch} (the global batch) does not divide among "
                             f"{world} ranks")
        share = a.batch // world
        torch.manual_seed(0)  # DDP broadcasts rank 0's weights anyway
        model, res = build(a.model, a.classes)
        res = a.res or res
        model = DistributedDataParallel(model.train(), bucket_cap_mb=a.bucket_mb)
        # The global batch, the same on every rank; this rank trains on its share.
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(a.batch, 3, res, res, generator=gen)[rank * share:(rank + 1) * share].contiguous()
        y = torch.randint(0, a.classes, (a.batch,), generator=gen)[rank * share:(rank + 1) * share].contiguous()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

        def step():
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.item()

        for _ in range(a.warmup):
            step()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            last = step()
        dist.barrier()
        s = time.perf_counter() - t0
        if rank == 0:
            params = sum(p.numel() for p in model.parameters())
            grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
            print(f"{a.model}: torch {torch.__version__} DDP (gloo), {world} ranks x {torch.get_num_threads()} "
                  f"threads, {params} params ({grad_bytes / 1e6:.2f} MB of gradients all-reduced per step), "
                  f"batch {a.batch} ({share} per rank) at {res}x{res}, {a.steps} steps in {s:.3f} s (loss {last:.3f})",
                  file=sys.stderr)
            print(f"{a.model} {a.batch * a.steps / s:.1f} img/s", flush=True)
    finally:
        dist.destroy_process_group()


def spawned(rank, world, port, a):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    worker(rank, world, a)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    a = parse_args()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), a)
        return
    if a.batch % a.ranks:
        sys.exit(f"torch_ddp_bench: --batch {a.batch} (the global batch) does not divide among {a.ranks} ranks")
    # One host: gloo over the loopback interface (a container's hostname may not resolve).
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(spawned, args=(a.ranks, free_port(), a), nprocs=a.ranks, join=True)


if __name__ == "__main__":
    main()
