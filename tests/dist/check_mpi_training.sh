#!/usr/bin/env bash
# The training apps under `mpirun -np 2` at global batch 32 against one process at batch 32, same
# seed and flags: the per-epoch train loss and accuracy (of the global batches) and the validation
# loss and accuracy in metrics.jsonl must agree (1e-4 relative: the ranks sum their gradients in
# another order than one process), and only rank 0 may write.
#   vit     ember-vit with its dropout and drop-path on: their masks are keyed by each sample's
#           place in the global batch, so the 2 ranks draw, between them, one process's masks
#   effnet  ember-effnet --sync-bn (BatchNorm statistics of the global batch), dropout and
#           drop-path on
#   budget  ember-effnet --time-budget: the lead plans hold and cooldown and broadcasts the plan
#           (a budget far beyond the schedule: capped at 3x, 5 epochs, whatever the speed); the
#           learning rate of every epoch must agree to 1e-9, the rest to 1e-3 (over 5 epochs of a
#           model from random weights the ranks' summation order moves the validation loss by
#           ~2e-4; the 1e-4 agreement is the two cases above)
#   tests/dist/check_mpi_training.sh BUILD_DIR MPIEXEC
set -euo pipefail
build="$1" mpiexec="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--batch 32 --head-epochs 0 --warmup 0.5 --hold 0.5 --cooldown 1 --threads 1 --workers 1 --seed 3)

# compare NAME APP FLAGS...: one process, then 2 ranks, then their metrics.jsonl ($rows epochs,
# relative tolerance $tol).
rows=2 tol=1e-4
compare() {
  local name="$1" app="$2"
  shift 2
  "$build/apps/$app" "$@" "${common[@]}" --out "$dir/$name-one" > "$dir/$name-one.log" 2>&1 ||
    { cat "$dir/$name-one.log"; exit 1; }
  OMPI_MCA_btl_vader_single_copy_mechanism=none "$mpiexec" --oversubscribe --allow-run-as-root -np 2 \
    "$build/apps/$app" "$@" "${common[@]}" --out "$dir/$name-two" > "$dir/$name-two.log" 2>&1 ||
    { cat "$dir/$name-two.log"; exit 1; }
  grep -q "2 ranks (mpi) of batch 16" "$dir/$name-two.log" ||
    { echo "$name: the 2-rank run did not report 2 ranks of batch 16:"; cat "$dir/$name-two.log"; exit 1; }
  local n
  n=$(grep -c "best validation accuracy" "$dir/$name-two.log" || true)
  [ "$n" -eq 1 ] || { echo "$name: expected one report (rank 0's), got $n"; exit 1; }
  python3 - "$name" "$dir/$name-one/metrics.jsonl" "$dir/$name-two/metrics.jsonl" "$rows" "$tol" <<'PY'
import json, sys
name = sys.argv[1]
one = [json.loads(l) for l in open(sys.argv[2])]
two = [json.loads(l) for l in open(sys.argv[3])]
assert len(one) == len(two) == int(sys.argv[4]), (len(one), len(two), sys.argv[4])
tol = float(sys.argv[5])
for a, b in zip(one, two):
    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        if abs(a[k] - b[k]) > (1e-9 if k == "lr" else tol) * max(1.0, abs(a[k])):
            sys.exit(f"{name} epoch {a['epoch']}: {k} {a[k]} (one process) != {b[k]} (2 ranks)")
    print(f"{name} epoch {a['epoch']}: train loss {a['train_loss']} / {b['train_loss']}, "
          f"val acc {a['val_acc']} / {b['val_acc']}")
PY
}

compare vit ember-vit --model vit_tiny --generated-size 640 --dropout 0.1 --drop-path 0.1
compare effnet ember-effnet --model effnet_tiny --generated-size 320 --sync-bn
grep -q "synchronized BatchNorm" "$dir/effnet-two.log" || { echo "effnet: --sync-bn not reported"; exit 1; }
rows=5 tol=1e-3 compare budget ember-effnet --model effnet_tiny --generated-size 320 --sync-bn --time-budget 600
grep -q "capped at 3x" "$dir/budget-two.log" || { echo "budget: no capped plan reported"; cat "$dir/budget-two.log"; exit 1; }
