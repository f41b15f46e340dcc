#!/bin/sh
# ember's apps start on a machine without libcudnn or libnccl: no program in BUILD_DIR/apps needs
# either, directly or through another library (ldd). (NCCL is opened at run time, on the first
# collective of a CUDA tensor: dist/nccl_group.h.) As a control that the check can see cuDNN at all,
# bench_conv2d, whose cuDNN baselines are the one user of it, must need it when it was built
# with them. Usage: check_no_cudnn.sh BUILD_DIR [bench_conv2d_has_cudnn: 0|1]
build=$1
bench_has_cudnn=${2:-0}
status=0
n=0
for exe in "$build"/apps/ember-*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  head -c 4 "$exe" | grep -q ELF || continue  # ember-fetch is a Python script
  n=$((n + 1))
  if ldd "$exe" | grep -i cudnn; then
    echo "FAIL: $(basename "$exe") needs cuDNN (above)"
    status=1
  fi
  if ldd "$exe" | grep -i libnccl; then
    echo "FAIL: $(basename "$exe") needs NCCL (above)"
    status=1
  fi
done
[ $n -gt 0 ] || { echo "FAIL: no programs in $build/apps"; exit 1; }
echo "$n apps checked: none needs libcudnn or libnccl"
if [ "$bench_has_cudnn" = 1 ]; then
  b="$build/bench/bench_conv2d"
  if [ ! -x "$b" ]; then
    echo "bench_conv2d not built: control not run"
  elif ldd "$b" | grep -q 'libcudnn'; then
    echo "control: bench_conv2d needs libcudnn, as it should"
  else
    echo "FAIL: bench_conv2d was built with its cuDNN baselines but ldd shows no libcudnn: the check cannot see cuDNN"
    status=1
  fi
fi
exit $status
