#!/usr/bin/env bash
# Installs the build into a temporary prefix, then configures, builds and runs a consumer project
# that uses find_package(ember) and links ember::ember, with the compiler the build used (a
# sanitizer build's libraries link only with the compiler's own sanitizer runtime).
set -euo pipefail
build_dir=$1
src_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$src_dir/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$work/build" -j2 >/dev/null
"$work/build/consumer"
