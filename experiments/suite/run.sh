#!/usr/bin/env bash
# The held-out evaluation suite: learned optimizers evaluated without retraining on the tasks of
# experiments/suite/tasks.txt (none of them used for meta-training), next to the hand-designed optimizers tuned on
# each task's validation problems; one table of per-task comparisons and the aggregate over the tasks (interquartile
# mean of the final loss normalised by tuned Adam's, bootstrap interval, divergence count), all by
# `hamlet compare --mode=suite` (docs/methods.md §12).
#
#   experiments/suite/run.sh             the committed learned optimizers (results/paper/full/weights, seeds 0..4)
#   experiments/suite/run.sh --results   the same, into the committed results/suite/
# Output: runs/<time>-suite/ (or $HAMLET_RESULTS_DIR, or results/suite/ with --results): LABEL/baselines.h5 and
# LABEL/learned_ROW[_seedK].h5 for the rows it had to evaluate, suite.txt (the run files of every task, the input of
# `hamlet compare --mode=suite`), TABLE.md, suite.json and PROVENANCE.md.
#
# Rows are evaluated only where no task directory holds them yet: each task names the directories of its committed
# rows (the transfer study's targets reference results/transfer/LABEL, the tabular task results/tabular), and the
# output directory is searched too, so a run evaluates what is missing and an interrupted run continues where it
# stopped (delete a file to evaluate it again). New weights are evaluated on exactly the committed rows' problems.
#
# Variables:
#   LEARNED  learned optimizers (default: those the paper protocol covers, hamlet_paper_learned)
#   SEEDS    meta-training seeds (default: 0 1 2 3 4); the weights are $HAMLET_WEIGHTS_DIR/${PREFIX}_NAME_seedK.h5
#   HAMLET_WEIGHTS_DIR (default results/paper/full/weights), PREFIX (default mnist_sigmoid)
#   PROTOCOLS  directory of the optimizer files NAME.ini the weights were meta-trained with (default
#            experiments/protocols/mnist_sigmoid; evaluate reads their [optimizer.NAME] options, e.g. out_mul)
#   TAG      row name suffix for other weights: the rows become NAME-TAG (files learned_NAME-TAG[_seedK].h5), so they
#            sit beside the committed NAME rows instead of merging with them as extra seeds; required whenever
#            HAMLET_WEIGHTS_DIR or PREFIX is set to something else
#   TASKS    labels of tasks to evaluate rows for (default: all); the table always covers every task
#   SUITE    the task files, separated by spaces, their rows in order (default experiments/suite/tasks.txt;
#            experiments/mixture/run.sh puts experiments/mixture/suite.txt, Table A2's task, first); ROW_PATTERN and
#            SUITE_NOTE: see make_table.sh
#   SUITE_PROBLEMS  a cheaper suite for many rows: every task on its first min(N, its count) test problems, and
#            no committed rows referenced (they hold other counts): the hand-designed optimizers are tuned as always
#            (same validation problems, same grid) and evaluated into this run's directory
#   HAMLET_JOBS  tasks evaluated side by side (default: nproc); HAMLET_BIN the binary
# Example, weights of a new meta-training run in my_weights/mnist_sigmoid_lstm_seed{0,1,2}.h5:
#   HAMLET_WEIGHTS_DIR=my_weights TAG=mine LEARNED=lstm SEEDS="0 1 2" experiments/suite/run.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_full_only_flags experiments/suite/run.sh "$@"
out="$(hamlet_output_dir suite "$root/results/suite" "$regenerate")"
default_weights="$root/results/paper/full/weights"
weights="${HAMLET_WEIGHTS_DIR:-$default_weights}"
prefix="${PREFIX:-mnist_sigmoid}"
protocols="${PROTOCOLS:-$root/experiments/protocols/mnist_sigmoid}"
names="${LEARNED:-$(hamlet_paper_learned)}"
seeds="${SEEDS:-0 1 2 3 4}"
tag="${TAG:-}"
selected="${TASKS:-}"
suite="${SUITE:-$root/experiments/suite/tasks.txt}"
cap="${SUITE_PROBLEMS:-}"
[ -z "$cap" ] || hamlet_require_positive experiments/suite/run.sh SUITE_PROBLEMS "$cap"
for f in $suite; do [ -f "$f" ] || { echo "experiments/suite/run.sh: SUITE: no task file $f" >&2; exit 2; }; done
jobs="${HAMLET_JOBS:-$(nproc)}"
hamlet_require_positive experiments/suite/run.sh HAMLET_JOBS "$jobs"
[[ "$tag" =~ ^[A-Za-z0-9.-]*$ ]] || { echo "experiments/suite/run.sh: TAG may hold letters, digits, '.' and '-', got '$tag'" >&2; exit 2; }
if [ -z "$tag" ] && { [ "$(realpath -m "$weights")" != "$(realpath -m "$default_weights")" ] || [ "$prefix" != mnist_sigmoid ]; }; then
  echo "experiments/suite/run.sh: weights other than the committed ones need TAG=NAME, so that their rows are not" \
    "read as more seeds of the committed rows" >&2
  exit 2
fi
for seed in $seeds; do
  [[ "$seed" =~ ^[0-9]+$ ]] || { echo "experiments/suite/run.sh: SEEDS must be non-negative integers, got '$seed'" >&2; exit 2; }
done
hamlet_begin suite
for name in $names; do
  [ -f "$protocols/$name.ini" ] || { log "missing $protocols/$name.ini (the optimizer file of $name)"; exit 1; }
  for seed in $seeds; do
    f="$weights/${prefix}_${name}_seed${seed}.h5"
    [ -f "$f" ] || { log "missing $f"; exit 1; }
  done
done
declare -A known=()
while IFS='|' read -r label _rest; do known[$label]=1; done < <(hamlet_tables_rows $suite)
for label in $selected; do
  [ -n "${known[$label]:-}" ] || { echo "experiments/suite/run.sh: TASKS: unknown task '$label' (${!known[*]})" >&2; exit 2; }
done

baselines=momentum,nag,adam,rmsprop,symplectic-euler,symplectic,ecdsep
mkdir -p "$out"
# One timings file per run: runs of other rows may share the output directory at the same time.
timings="$out/.timings.$$.tmp"
: > "$timings"

# existing DIRS... FILE: the first DIR/FILE that exists, else nothing.
existing() {
  local file=${*: -1} dir
  for dir in "${@:1:$#-1}"; do
    [ -f "$dir/$file" ] && { echo "$dir/$file"; return 0; }
  done
  return 0
}

task() {  # label steps problems tune_problems "dirs" task flags...
  local label=$1 steps=$2 n=$3 tn=$4 dirs=$5
  shift 5
  local here="$out/$label" places=() d name seed row file t0 evaluated=0
  [ -z "$cap" ] || { n=$(( n < cap ? n : cap )); dirs=""; }
  for d in $dirs; do places+=("$root/$d"); done
  places+=("$here")
  t0=$(date +%s)
  if [ -z "$(existing "${places[@]}" baselines.h5)" ]; then
    log "$label: tune + evaluate the hand-designed optimizers ($n problems, $tn validation problems, $steps steps)"
    mkdir -p "$here"
    "$bin" evaluate "$@" --optimizers=$baselines --tune --tune-problems="$tn" --problems="$n" --steps="$steps" \
      --seed=0 --log-level=warn --out="$here/baselines.h5" >/dev/null
    echo "- $label: hand-designed optimizers tuned and evaluated in $(( $(date +%s) - t0 )) s" >> "$timings"
  fi
  t0=$(date +%s)
  for name in $names; do
    row="$name${tag:+-$tag}"
    for seed in $seeds; do
      file="learned_${row}.h5"
      [ "$seed" = 0 ] || file="learned_${row}_seed${seed}.h5"
      [ -z "$(existing "${places[@]}" "$file")" ] || continue
      log "$label: evaluate $row (meta-training seed $seed)"
      mkdir -p "$here"
      "$bin" evaluate "$@" --optimizers="$name" --config="$protocols/$name.ini" \
        "--optimizer.$name.weights=$weights/${prefix}_${name}_seed${seed}.h5" --problems="$n" --steps="$steps" \
        --seed=0 --log-level=warn --out="$here/$file" >/dev/null
      evaluated=$((evaluated + 1))
    done
  done
  [ "$evaluated" = 0 ] || echo "- $label: $evaluated learned row file(s) evaluated in $(( $(date +%s) - t0 )) s" >> "$timings"
}

while IFS='|' read -r label steps n tn _title flags dirs; do
  [ -z "$selected" ] || [[ " $selected " == *" $label "* ]] || continue
  # shellcheck disable=SC2086
  hamlet_run_job "$jobs" task "$label" "$steps" "$n" "$tn" "$dirs" $flags
done < <(hamlet_tables_rows $suite)
hamlet_wait_jobs || { log "an evaluation failed (see the messages above); table not written"; exit 1; }

command="${SUITE_PROBLEMS:+SUITE_PROBLEMS=$cap }${SUITE:+SUITE=\"$(for f in $suite; do realpath --relative-to="$root" "$f"; done | xargs)\" }${LEARNED:+LEARNED=\"$names\" }${SEEDS:+SEEDS=\"$seeds\" }${TAG:+TAG=$tag }${TASKS:+TASKS=\"$selected\" }experiments/suite/run.sh$flag"
{
  if [ -s "$timings" ]; then
    echo "- \`$command\`: $(hamlet_wall_time), $jobs task(s) side by side; learned optimizers $names, meta-training seeds"
    echo "  $seeds, weights \`$(realpath --relative-to="$root" "$weights")/${prefix}_NAME_seedK.h5\` with \`$(realpath --relative-to="$root" "$protocols")/NAME.ini\`; $("$bin" version):"
    sed 's/^/  /' "$timings"
  else
    echo "- \`$command\`: every row existed; nothing evaluated (table rebuilt, $(hamlet_wall_time))."
  fi
} >> "$out/PROVENANCE.md"
rm -f "$timings"
SUITE="$suite" HAMLET_BIN="$bin" "$root/experiments/suite/make_table.sh" "$out" "$command"
echo "suite: $out/TABLE.md"
