#!/usr/bin/env bash
# Data-parallel training throughput on one host, side by side in one run (the columns alternate
# within each round; best of R rounds), at one global batch:
#   ember 1x1    ember-bench-train, 1 process, 1 thread
#   ember 1x2    ember-bench-train, 1 process, 2 threads
#   ember 2x1    mpirun -np 2 ember-bench-train, 1 thread per rank (gradients all-reduced in buckets during backward)
#   torch 2x1    PyTorch DistributedDataParallel (gloo), 2 ranks x 1 thread (bench/compare/torch_ddp_bench.py)
#   torch 1x1    the same with 1 rank
# and the ratios the issue asks for: ember 2x1 / ember 1x1 (the scaling) and ember 2x1 / torch 2x1.
#
#   bench/compare/compare_dist.sh [--models "effnet_b0 vit_ti_p4"] [--batch 128] [--steps 10]
#       [--warmup 2] [--rounds 3] [--ranks 2] [--build build]
# PyTorch: the virtual environment bench/compare/setup_torch_venv.sh makes ($EMBER_CACHE/torch-venv,
# or TORCH_PYTHON=path/to/python3); without it the torch columns are left out, saying why.
# Run it on a quiet machine: ranks x threads should not exceed the cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
models="effnet_b0 vit_ti_p4" batch=128 steps=10 warmup=2 rounds=3 ranks=2 build=build
while (($#)); do
  case "$1" in
    --models) models="$2"; shift 2 ;; --batch) batch="$2"; shift 2 ;; --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;; --rounds) rounds="$2"; shift 2 ;; --ranks) ranks="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    *) echo "compare_dist.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
ember="$build/apps/ember-bench-train"
[ -x "$ember" ] || { echo "compare_dist.sh: $ember not built (scripts/build, or --build DIR)" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "compare_dist.sh: no mpirun (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
py="${TORCH_PYTHON:-${EMBER_CACHE:-$HOME/.cache/ember}/torch-venv/bin/python3}"
torch_version=""
[ -x "$py" ] && torch_version=$("$py" -c "import torch, timm; print(torch.__version__)" 2>/dev/null | tail -n 1) || torch_version=""
[ -n "$torch_version" ] || echo "compare_dist.sh: no torch+timm under $py; the torch columns are left out" >&2

# vader's single-copy (CMA) is refused inside most containers; shared-memory copies work everywhere.
mpi=(mpirun --oversubscribe --allow-run-as-root -np "$ranks" -x OMPI_MCA_btl_vader_single_copy_mechanism=none
     -x OMP_NUM_THREADS=1)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
common=(--batch "$batch" --steps "$steps" --warmup "$warmup")

# column NAME MODEL: prints that column's img/s for MODEL (0 when the run failed; its log on stderr).
column() {
  local out status=0
  case "$1" in
    ember_1x1) out=$("$ember" --model "$2" "${common[@]}" --threads 1 2>&1) || status=$? ;;
    ember_1x2) out=$("$ember" --model "$2" "${common[@]}" --threads 2 2>&1) || status=$? ;;
    ember_Nx1) out=$("${mpi[@]}" "$ember" --model "$2" "${common[@]}" --threads 1 2>&1) || status=$? ;;
    torch_Nx1) out=$(OMP_NUM_THREADS=1 "$py" bench/compare/torch_ddp_bench.py --model "$2" "${common[@]}" --ranks "$ranks" --threads 1 2>&1) || status=$? ;;
    torch_1x1) out=$(OMP_NUM_THREADS=1 "$py" bench/compare/torch_ddp_bench.py --model "$2" "${common[@]}" --ranks 1 --threads 1 2>&1) || status=$? ;;
  esac
  local v
  v=$(printf '%s\n' "$out" | awk '$3 == "img/s" {v = $2} END {print v + 0}')
  if [ "$status" -ne 0 ] || [ "$v" = 0 ]; then
    printf 'compare_dist.sh: %s %s failed (status %s):\n%s\n' "$1" "$2" "$status" "$out" >&2
    echo 0
    return
  fi
  echo "$v"
}

columns=(ember_1x1 ember_1x2 ember_Nx1)
[ -n "$torch_version" ] && columns+=(torch_Nx1 torch_1x1)
echo "date: $(date -u '+%F %H:%M') UTC, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "ember: $(git log -1 --format=%h); ${torch_version:+torch $torch_version (PyPI) DDP gloo; }global batch $batch," \
     "$steps steps after $warmup, best of $rounds rounds; img/s"
header=$(printf '%-12s' model)
for c in "${columns[@]}"; do header+=$(printf ' %10s' "${c/N/$ranks}"); done
header+=$(printf ' %12s' "ember ${ranks}x1/1x1")
[ -n "$torch_version" ] && header+=$(printf ' %14s' "ember/torch ${ranks}x1")
echo "$header"
for m in $models; do
  declare -A best=()
  for c in "${columns[@]}"; do best[$c]=0; done
  for ((r = 0; r < rounds; r++)); do
    for c in "${columns[@]}"; do
      v=$(column "$c" "$m")
      best[$c]=$(awk -v a="${best[$c]}" -v b="$v" 'BEGIN {print (b > a ? b : a)}')
    done
  done
  row=$(printf '%-12s' "$m")
  for c in "${columns[@]}"; do row+=$(printf ' %10.1f' "${best[$c]}"); done
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
  row+=$(printf ' %12s' "$(ratio "${best[ember_Nx1]}" "${best[ember_1x1]}")")
  [ -n "$torch_version" ] && row+=$(printf ' %14s' "$(ratio "${best[ember_Nx1]}" "${best[torch_Nx1]}")")
  echo "$row"
  unset best
done
