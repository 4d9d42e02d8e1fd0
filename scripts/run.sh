#!/usr/bin/env bash
# Set up, fetch data, build, and run the default experiments into one run directory, runs/<UTC time>-default/
# (git ignores runs/; the committed results/ are left alone), and print where they went:
#   1. the eight hand-designed optimizers (tuned) on 100 paired quadratics and 100 paired MNIST-MLP problems
#      (experiments/baselines/run.sh -> <run>/baselines/), about 2 minutes;
#   2. the paper reproduction with quick budgets (experiments/paper/run.sh --quick -> <run>/paper/TABLES.md and
#      figures), about 4 minutes on 2 cores. The full reproduction is `experiments/paper/run.sh`.
# HAMLET_RUN_DIR chooses the run directory. Regenerating the committed results is the experiment scripts'
# --results flag (e.g. experiments/paper/run.sh --quick --results).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HAMLET_BUILD_DIR:-$root/build}"
run="${HAMLET_RUN_DIR:-$root/runs/$(date -u +%Y%m%d-%H%M%S)-default}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
HAMLET_BIN="$build/hamlet" "$root/scripts/fetch_data.sh"
mkdir -p "$run"
HAMLET_BIN="$build/hamlet" HAMLET_RESULTS_DIR="$run/baselines" "$root/experiments/baselines/run.sh"
HAMLET_BIN="$build/hamlet" HAMLET_RESULTS_DIR="$run/paper" "$root/experiments/paper/run.sh" --quick
echo
echo "paper tables (quick budgets): $run/paper/TABLES.md"
sed -n '/^### Table A2/,/^### Table A3/p' "$run/paper/TABLES.md" | grep '^|'
echo
echo "this run's files: $run"
