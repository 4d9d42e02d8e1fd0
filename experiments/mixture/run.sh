#!/usr/bin/env bash
# Issue 31's protocol (docs/methods.md §13.4): every row of experiments/mixture/rows.txt meta-trained the same way
# on the mixture of small digits MLPs (experiments/protocols/mixture/task.ini: PES, log-uniform truncations up to
# 1,023 steps, augmentation, equal optimizee-step budgets), several meta-training seeds, then every row evaluated
# without retraining on the held-out suite (Table A2's MNIST sigmoid MLP, experiments/mixture/suite.txt, and the
# tasks of experiments/suite/tasks.txt) against the tuned hand-designed optimizers, by experiments/suite/run.sh.
#
#   experiments/mixture/run.sh             into runs/<time>-mixture/
#   experiments/mixture/run.sh --results   into the committed results/mixture/
# Output: weights/DIR_OPTIMIZER_seedK.h5 (the selected weights), meta/DIR_OPTIMIZER_seedK.h5 (meta-training run
# files: curves, validation scores per configuration, command, wall time), suite/ (the suite's run files and
# TABLE.md, rows OPTIMIZER-mix[-X]), PAIRWISE.md (every row against phnn-lift, experiments/mixture/make_tables.sh),
# PROVENANCE.md.
#
# Resumable: a meta-training whose weights exist is skipped, one with a checkpoint continues from it, and the suite
# evaluates only missing rows; so `HAMLET_RESULTS_DIR=DIR experiments/mixture/run.sh` continues an interrupted run.
# Variables:
#   ROWS        row labels of rows.txt (default: all), SEEDS (default: 0 1 2)
#   TIME_LIMIT  seconds each meta-training may run in this call (default 0 = none); one that stops at the limit keeps
#               its checkpoint, and the suite waits until every row is trained
#   SINGLE_TASK_WEIGHTS  where mnist_sigmoid_phnn-lift_seedK.h5 lie (default results/paper/full/weights): phnn-lift
#               meta-trained by the single-task protocol, evaluated on the same suite as row phnn-lift-a2
#   SUITE_PROBLEMS  test problems per suite task (default 20: seven rows x three seeds on 15 tasks at the committed
#               suite's 100 problems would cost hours of CPU; the tuned hand-designed rows are evaluated on the same 20)
#   HAMLET_JOBS meta-trainings side by side (default nproc), HAMLET_BIN the binary
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_full_only_flags experiments/mixture/run.sh "$@"
out="$(hamlet_output_dir mixture "$root/results/mixture" "$regenerate")"
seeds="${SEEDS:-0 1 2}"
selected="${ROWS:-}"
time_limit="${TIME_LIMIT:-0}"
problems="${SUITE_PROBLEMS:-20}"
hamlet_require_positive experiments/mixture/run.sh SUITE_PROBLEMS "$problems"
jobs="${HAMLET_JOBS:-$(nproc)}"
hamlet_require_positive experiments/mixture/run.sh HAMLET_JOBS "$jobs"
[[ "$time_limit" =~ ^[0-9]+$ ]] || { echo "experiments/mixture/run.sh: TIME_LIMIT must be a number of seconds, got '$time_limit'" >&2; exit 2; }
for seed in $seeds; do
  [[ "$seed" =~ ^[0-9]+$ ]] || { echo "experiments/mixture/run.sh: SEEDS must be non-negative integers, got '$seed'" >&2; exit 2; }
done
declare -A row_dir=() row_name=()
rows=()
while IFS='|' read -r label dir name _what; do
  row_dir[$label]=$dir row_name[$label]=$name
  rows+=("$label")
done < <(hamlet_table_rows "$root/experiments/mixture/rows.txt")
for label in $selected; do
  [ -n "${row_dir[$label]:-}" ] || { echo "experiments/mixture/run.sh: ROWS: unknown row '$label' (${rows[*]})" >&2; exit 2; }
done
[ -z "$selected" ] || read -r -a rows <<< "$selected"
hamlet_begin mixture
mkdir -p "$out/weights" "$out/meta" "$out/checkpoints"
timings="$out/.timings.tmp"
: >> "$timings"
protocols="$root/experiments/protocols"

meta_train() {  # row seed
  local label=$1 seed=$2
  local dir=${row_dir[$1]} name=${row_name[$1]}
  local base="${dir}_${name}_seed${seed}" resume=() t0 rc=0
  [ -f "$out/weights/$base.h5" ] && return 0
  [ -f "$out/checkpoints/$base.h5" ] && resume=(--resume)
  log "meta-train $label ($dir/$name.ini, seed $seed)${resume:+, resumed from its checkpoint}"
  t0=$(date +%s)
  "$bin" meta-train --config="$protocols/mixture/task.ini" --config="$protocols/$dir/$name.ini" \
    --optimizer."$name".seed="$seed" --seed="$seed" --checkpoint="$out/checkpoints/$base.h5" "${resume[@]}" \
    --time-limit="$time_limit" --weights-out="$out/weights/$base.h5" --out="$out/meta/$base.h5" --log-level=warn \
    >/dev/null || rc=$?
  if [ "$rc" = 3 ]; then
    log "$label seed $seed stopped at TIME_LIMIT=$time_limit s; its checkpoint continues on the next call"
    echo "- meta-train $base: $(( $(date +%s) - t0 )) s${resume:+ (resumed)}, stopped at the time limit" >> "$timings"
    return 0
  fi
  [ "$rc" = 0 ] || return "$rc"
  rm -f "$out/checkpoints/$base.h5"
  echo "- meta-train $base: $(( $(date +%s) - t0 )) s${resume:+ (resumed: the seconds column of the meta-training run file holds every epoch)}" >> "$timings"
}

for seed in $seeds; do
  for label in "${rows[@]}"; do hamlet_run_job "$jobs" meta_train "$label" "$seed"; done
done
hamlet_wait_jobs || { log "a meta-training failed (see the messages above)"; exit 1; }
{
  echo "- \`${ROWS:+ROWS=\"$selected\" }${SEEDS:+SEEDS=\"$seeds\" }${SUITE_PROBLEMS:+SUITE_PROBLEMS=$problems }${TIME_LIMIT:+TIME_LIMIT=$time_limit }experiments/mixture/run.sh$flag\`: $(hamlet_wall_time), $jobs job(s) side by side, rows ${rows[*]}, meta-training seeds $seeds; $("$bin" version):"
  sed 's/^/  /' "$timings"
} >> "$out/PROVENANCE.md"
rm -f "$timings"
for label in "${rows[@]}"; do
  for seed in $seeds; do
    [ -f "$out/weights/${row_dir[$label]}_${row_name[$label]}_seed${seed}.h5" ] || {
      log "not every row is trained yet; rerun with HAMLET_RESULTS_DIR=$out to continue"; exit 3; }
  done
done

# The held-out suite, one call per protocol directory (its rows share weights prefix and tag), on the first
# $problems problems of every task, so the directory holds only this study's rows.
suite() {  # weights prefix protocols tag names
  SUITE="$root/experiments/mixture/suite.txt $root/experiments/suite/tasks.txt" SUITE_PROBLEMS="$problems" \
    HAMLET_RESULTS_DIR="$out/suite" \
    SUITE_NOTE="Learned optimizers meta-trained by the mixture protocol (experiments/protocols/mixture: small MLPs on the 8x8 digits; row -mix), and phnn-lift by the single-task protocol on Table A2's task (row -a2), evaluated without retraining" \
    HAMLET_WEIGHTS_DIR="$1" PREFIX="$2" PROTOCOLS="$3" TAG="$4" LEARNED="$5" SEEDS="$seeds" HAMLET_BIN="$bin" \
    "$root/experiments/suite/run.sh"
}
declare -A dir_names=()
for label in "${rows[@]}"; do dir_names[${row_dir[$label]}]+="${dir_names[${row_dir[$label]}]:+ }${row_name[$label]}"; done
for dir in "${!dir_names[@]}"; do
  suite "$out/weights" "$dir" "$protocols/$dir" "mix${dir#mixture}" "${dir_names[$dir]}"
done
# For comparison, phnn-lift meta-trained the old way (experiments/protocols/mnist_sigmoid/phnn-lift.ini, by
# experiments/paper/run.sh) where its weights exist for every seed: row phnn-lift-a2.
single="${SINGLE_TASK_WEIGHTS:-$root/results/paper/full/weights}"
missing=0
for seed in $seeds; do [ -f "$single/mnist_sigmoid_phnn-lift_seed$seed.h5" ] || missing=1; done
if [ "$missing" = 0 ]; then
  suite "$single" mnist_sigmoid "$protocols/mnist_sigmoid" a2 phnn-lift
else
  log "no single-task phnn-lift weights for seeds $seeds in $single: row phnn-lift-a2 left out"
fi
HAMLET_BIN="$bin" "$root/experiments/mixture/make_tables.sh" "$out"
echo "mixture: $out/suite/TABLE.md, $out/PAIRWISE.md"
