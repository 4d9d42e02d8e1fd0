#!/usr/bin/env bash
# Set up, fetch data, build, and run the default experiments; prints where the results went:
#   1. the eight hand-designed optimizers (tuned) on 100 paired quadratics and 100 paired MNIST-MLP problems
#      (experiments/baselines/run.sh -> results/baselines/), about 2 minutes;
#   2. the paper reproduction with quick budgets (experiments/paper/run.sh --quick -> results/paper/TABLES.md
#      and figures), about 4 minutes on 2 cores. The full reproduction is `experiments/paper/run.sh`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HAMLET_BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
HAMLET_BIN="$build/hamlet" "$root/scripts/fetch_data.sh"
HAMLET_BIN="$build/hamlet" "$root/experiments/baselines/run.sh"
HAMLET_BIN="$build/hamlet" "$root/experiments/paper/run.sh" --quick
echo
echo "paper tables (quick budgets): $root/results/paper/TABLES.md"
sed -n '/^### Table A2/,/^### Table A3/p' "$root/results/paper/TABLES.md" | grep '^|'
