#!/usr/bin/env bash
# Training throughput, ember vs PyTorch, side by side in one run (alternating, best of R rounds).
#   bench/compare/compare_train.sh [--models "effnet_b0 vit_ti_p4"] [--batch 64] [--threads 2] [--steps 10] [--rounds 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
models="effnet_b0 vit_ti_p4" batch=64 threads=2 steps=10 rounds=2 device=cpu
while (($#)); do
  case "$1" in
    --models) models="$2"; shift 2 ;; --batch) batch="$2"; shift 2 ;; --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;; --rounds) rounds="$2"; shift 2 ;; --device) device="$2"; shift 2 ;;
    *) echo "compare_train.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
ember=build/apps/ember-bench-train
[ -x "$ember" ] || { echo "compare_train.sh: $ember not built (scripts/build)" >&2; exit 1; }
py=/usr/bin/python3
echo "date: $(date -u +%F) host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-12s %12s %12s %8s\n' model "ember img/s" "torch img/s" ratio
for m in $models; do
  best_e=0 best_t=0
  for ((r = 0; r < rounds; r++)); do
    e=$("$ember" --model "$m" --batch "$batch" --threads "$threads" --steps "$steps" --device "$device" 2>/dev/null | tail -1 | awk '{print $2}')
    t=$(OMP_NUM_THREADS=$threads "$py" bench/compare/torch_bench_train.py --model "$m" --batch "$batch" --threads "$threads" --steps "$steps" --device "$device" 2>/dev/null | tail -1 | awk '{print $2}')
    best_e=$(awk -v a="$best_e" -v b="$e" 'BEGIN{print (b > a ? b : a)}')
    best_t=$(awk -v a="$best_t" -v b="$t" 'BEGIN{print (b > a ? b : a)}')
  done
  printf '%-12s %12.1f %12.1f %8.2f\n' "$m" "$best_e" "$best_t" "$(awk -v a="$best_e" -v b="$best_t" 'BEGIN{print a / b}')"
done
