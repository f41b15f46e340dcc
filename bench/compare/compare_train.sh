#!/usr/bin/env bash
# Training throughput, ember vs PyTorch, side by side in one run (alternating, best of R rounds).
#   bench/compare/compare_train.sh [--models "effnet_b0 vit_ti_p4 tf_efficientnet_lite0@96"]
#       [--batch 64] [--threads 2] [--steps 10] [--rounds 3] [--device cpu]
# A model may carry its resolution after an @. PyTorch columns: PyPI's current wheel from the
# virtual environment bench/compare/setup_torch_venv.sh makes ($EMBER_CACHE/torch-venv, or
# TORCH_PYTHON=path/to/python3), and Debian's python3-torch (/usr/bin/python3) where it is
# installed; a column whose Python lacks torch or timm is left out, with the reason on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
models="effnet_b0 vit_ti_p4 tf_efficientnet_lite0@96" batch=64 threads=2 steps=10 rounds=3 device=cpu
while (($#)); do
  case "$1" in
    --models) models="$2"; shift 2 ;; --batch) batch="$2"; shift 2 ;; --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;; --rounds) rounds="$2"; shift 2 ;; --device) device="$2"; shift 2 ;;
    *) echo "compare_train.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
ember=build/apps/ember-bench-train
[ -x "$ember" ] || { echo "compare_train.sh: $ember not built (scripts/build)" >&2; exit 1; }

names=() pythons=()
venv="${TORCH_PYTHON:-${EMBER_CACHE:-$HOME/.cache/ember}/torch-venv/bin/python3}"
for py in "$venv" /usr/bin/python3; do
  v=""
  # (timm may print import warnings first: the version is the last line)
  [ -x "$py" ] && v=$("$py" -c "import torch, timm; print(torch.__version__)" 2>/dev/null | tail -n 1) || v=""
  if [ -z "$v" ]; then
    echo "compare_train.sh: no torch+timm under $py; left out" >&2
    continue
  fi
  [ "$py" = /usr/bin/python3 ] && names+=("torch $v (Debian)") || names+=("torch $v (PyPI)")
  pythons+=("$py")
done

echo "date: $(date -u '+%F %H:%M') UTC, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "ember: $(git log -1 --format=%h), gemm kernel: ${EMBER_CPU_ISA:-best supported}; batch $batch, $threads threads, $steps steps, best of $rounds"
header=$(printf '%-26s %10s' model "ember")
for n in "${names[@]}"; do header+=$(printf ' | %24s %6s' "$n" ratio); done
echo "$header"
for spec in $models; do
  m="${spec%@*}" res=0
  [[ "$spec" == *@* ]] && res="${spec#*@}"
  best_e=0 best_t=()
  for _ in "${pythons[@]}"; do best_t+=(0); done
  for ((r = 0; r < rounds; r++)); do
    e=$("$ember" --model "$m" --res "$res" --batch "$batch" --threads "$threads" --steps "$steps" --device "$device" 2>/dev/null | tail -1 | awk '{print $2}')
    best_e=$(awk -v a="$best_e" -v b="${e:-0}" 'BEGIN{print (b > a ? b : a)}')
    for i in "${!pythons[@]}"; do
      t=$(OMP_NUM_THREADS=$threads "${pythons[$i]}" bench/compare/torch_bench_train.py --model "$m" --res "$res" --batch "$batch" \
            --threads "$threads" --steps "$steps" --device "$device" 2>/dev/null | tail -1 | awk '{print $2}')
      best_t[$i]=$(awk -v a="${best_t[$i]}" -v b="${t:-0}" 'BEGIN{print (b > a ? b : a)}')
    done
  done
  row=$(printf '%-26s %10.1f' "$spec" "$best_e")
  for i in "${!pythons[@]}"; do
    row+=$(printf ' | %24.1f %6s' "${best_t[$i]}" "$(awk -v a="$best_e" -v b="${best_t[$i]}" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }')")
  done
  echo "$row"
done
