#!/usr/bin/env bash
# Configures and builds the CMake project SRC in BUILD against the hamlet package installed under PREFIX, then
# runs the built executable EXE with the remaining arguments. Used by the install tests (tests/CMakeLists.txt).
# Usage: build_and_run.sh SRC BUILD PREFIX EXE [args...]
set -euo pipefail
src=$1 build=$2 prefix=$3 exe=$4
shift 4
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
rm -rf "$build"
cmake -S "$src" -B "$build" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "${HAMLET_JOBS:-2}"
# Run from a directory outside both trees: the installed library must find its data by itself.
run_dir="$(mktemp -d)"
trap 'rm -rf "$run_dir"' EXIT
cd "$run_dir"
"$build/$exe" "$@"
