#!/usr/bin/env bash
# --resume with another number of ranks than the run that wrote the checkpoint. A checkpoint holds
# no per-rank state (the model, the optimizer, the epoch, the iteration and the RNG offset are the
# same on every rank), so a 2-epoch run split in two — epoch 1, then --resume for epoch 2 — ends
# where a straight run ends, whichever rank counts the two halves ran on:
#   2 ranks, then 1 process        1 process, then 2 ranks
# against one process straight through, ember-effnet --sync-bn with dropout and drop-path on:
# metrics.jsonl's train loss, accuracy and lr within 1e-4 (relative), the validation loss within
# 1e-3 (an almost untrained model's eval-mode loss is the most sensitive number: the f32 rounding
# of the ranks' other summation order moves it by ~1e-4), and the resumed run starts at epoch 2. (As in tests/apps/test_fault_resume.cpp: --warmup 1 --hold 0 is the first epoch of
# --warmup 1 --hold 1.)
#   tests/dist/check_mpi_resume.sh BUILD_DIR MPIEXEC
set -euo pipefail
build="$1" mpiexec="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
app="$build/apps/ember-effnet"
flags=(--model effnet_tiny --generated-size 320 --batch 32 --head-epochs 0 --warmup 1 --cooldown 0 --sync-bn
       --threads 1 --workers 1 --seed 5)
one() { "$app" "${flags[@]}" "$@" > "$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }; }
two() {
  OMPI_MCA_btl_vader_single_copy_mechanism=none "$mpiexec" --oversubscribe --allow-run-as-root -np 2 \
    "$app" "${flags[@]}" "$@" > "$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
  grep -q "2 ranks (mpi)" "$dir/log" || { echo "not 2 ranks:"; cat "$dir/log"; exit 1; }
}
resumed_at_epoch_2() { grep -q "resume: from .* at epoch 1" "$dir/log" || { echo "no resume at epoch 2:"; cat "$dir/log"; exit 1; }; }

one --hold 1 --out "$dir/straight"
two --hold 0 --out "$dir/two_then_one"
one --hold 1 --out "$dir/two_then_one" --resume "$dir/two_then_one/last.safetensors"
resumed_at_epoch_2
one --hold 0 --out "$dir/one_then_two"
two --hold 1 --out "$dir/one_then_two" --resume "$dir/one_then_two/last.safetensors"
resumed_at_epoch_2

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
rows = lambda run: [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl")]
straight = rows("straight")
assert len(straight) == 2, straight
for run in ("two_then_one", "one_then_two"):
    got = rows(run)
    assert len(got) == 2, (run, len(got))
    for a, b in zip(straight, got):
        for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            tol = 1e-3 if k == "val_loss" else 1e-4
            if abs(a[k] - b[k]) > tol * max(1.0, abs(a[k])):
                sys.exit(f"{run} epoch {a['epoch']}: {k} {b[k]} != {a[k]} (straight, one process)")
    print(f"{run}: epoch 2 train loss {got[1]['train_loss']} (straight {straight[1]['train_loss']})")
PY
