#!/usr/bin/env bash
# Set up, fetch data, build, and run the default experiment; prints where the results went.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HAMLET_BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
HAMLET_BIN="$build/hamlet" "$root/scripts/fetch_data.sh"
HAMLET_BIN="$build/hamlet" "$root/experiments/baselines/run.sh"
