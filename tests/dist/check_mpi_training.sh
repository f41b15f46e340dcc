#!/usr/bin/env bash
# ember-vit under `mpirun -np 2` at global batch 32 against one process at batch 32, same seed:
# the per-epoch train loss and accuracy (of the global batches) and the validation loss and
# accuracy in metrics.jsonl must agree (1e-4 relative: the ranks sum their gradients in another
# order than one process), and only rank 0 may write. Dropout and drop-path are off: their masks
# are drawn per batch, so a rank's share draws other masks than the whole batch does.
#   tests/dist/check_mpi_training.sh BUILD_DIR MPIEXEC
set -euo pipefail
build="$1" mpiexec="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
flags=(--model vit_tiny --batch 32 --generated-size 640 --head-epochs 0 --warmup 0.5 --hold 0.5 --cooldown 1
       --drop-path 0 --dropout 0 --threads 1 --workers 1 --seed 3)
"$build/apps/ember-vit" "${flags[@]}" --out "$dir/one" > "$dir/one.log" 2>&1
OMPI_MCA_btl_vader_single_copy_mechanism=none "$mpiexec" --oversubscribe --allow-run-as-root -np 2 \
  "$build/apps/ember-vit" "${flags[@]}" --out "$dir/two" > "$dir/two.log" 2>&1 || { cat "$dir/two.log"; exit 1; }
grep -q "2 ranks (mpi) of batch 16" "$dir/two.log" || { echo "the 2-rank run did not report 2 ranks of batch 16:"; cat "$dir/two.log"; exit 1; }
n=$(grep -c "best validation accuracy" "$dir/two.log" || true)
[ "$n" -eq 1 ] || { echo "expected one report (rank 0's), got $n"; exit 1; }
python3 - "$dir/one/metrics.jsonl" "$dir/two/metrics.jsonl" <<'PY'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
two = [json.loads(l) for l in open(sys.argv[2])]
assert len(one) == len(two) == 2, (len(one), len(two))
for a, b in zip(one, two):
    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        if abs(a[k] - b[k]) > 1e-4 * max(1.0, abs(a[k])):
            sys.exit(f"epoch {a['epoch']}: {k} {a[k]} (one process) != {b[k]} (2 ranks)")
    print(f"epoch {a['epoch']}: train loss {a['train_loss']} / {b['train_loss']}, val acc {a['val_acc']} / {b['val_acc']}")
PY
