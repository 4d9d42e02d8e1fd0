#!/usr/bin/env bash
# Configures and builds hamlet (Release) in build/ (override with HAMLET_BUILD_DIR). ccache is used when
# installed, which makes a rebuild take seconds. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HAMLET_BUILD_DIR:-$root/build}"
jobs="${HAMLET_JOBS:-$(nproc)}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
# The Python package (docs/python.md) is built when Debian's python3-torch is there (scripts/setup.sh installs it);
# HAMLET_PYTHON=0 leaves it out.
python=OFF
if [ "${HAMLET_PYTHON:-1}" != 0 ] && /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then python=ON; fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DHAMLET_BUILD_PYTHON=$python \
    -DHAMLET_TEST_DATA_DIR="${HAMLET_DATA_DIR:-$root/data}" -DHAMLET_DATA_DIR="${HAMLET_DATA_DIR:-$root/data}" >/dev/null
elif ! grep -q "^HAMLET_BUILD_PYTHON:BOOL=$python\$" "$build/CMakeCache.txt"; then
  cmake "$build" -DHAMLET_BUILD_PYTHON=$python >/dev/null
fi
cmake --build "$build" -j "$jobs"
