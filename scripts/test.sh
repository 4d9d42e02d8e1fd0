#!/usr/bin/env bash
# Set up, fetch data, build and run the whole test suite (ctest). Usage: scripts/test.sh [ctest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(realpath -m "${HAMLET_BUILD_DIR:-$root/build}")"  # absolute: the script changes directory
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
HAMLET_BIN="$build/hamlet" "$root/scripts/fetch_data.sh"
# The OpenBLAS core hamlet picks on this CPU (core/runtime.hpp), fixed for every test process, so that none of them
# re-executes itself to choose it.
if [ -z "${OPENBLAS_CORETYPE+x}" ]; then
  core="$("$build/hamlet" version --blas-core)"
  [ -z "$core" ] || export OPENBLAS_CORETYPE="$core"
fi
cd "$build"
ctest --output-on-failure -j "${HAMLET_JOBS:-$(nproc)}" "$@"
# The Python package's tests (docs/python.md), when scripts/build.sh built it.
if [ -d "$build/python/hamlet" ]; then
  PYTHONPATH="$build/python" HAMLET_BIN="$build/hamlet" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    "$root/tests/python"
fi
