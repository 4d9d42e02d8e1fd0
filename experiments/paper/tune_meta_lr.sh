#!/usr/bin/env bash
# The meta-learning rate of a learned optimizer chosen like a baseline's learning rate (issue "Statistics a reviewer
# accepts": "for phnn, the meta-learning rate chosen on validation problems by the same grid procedure"). For each
# meta-training seed, NAME is meta-trained on TABLE with meta-lr = f x the protocol's value for every f of FACTORS,
# everything else as in experiments/paper/run.sh (experiments/protocols/TABLE/{task,NAME}.ini, same seeds). The
# f = 1 candidate is the committed run itself (results/paper/full/weights), not trained again. `hamlet select` picks
# the candidate with the lowest validation score (each run's best-epoch score, on the same validation problems for
# every candidate; never the test problems); the choice and every score go to selection/*.json.
# Both the protocol-meta-lr weights and the chosen ones are then evaluated here, with the same binary, on the
# table's 100 paired test problems, so their paired difference is the tuning's effect alone (no machine drift).
# TABLE.md (`hamlet compare`, experiments/paper/make_meta_lr_table.sh): the committed baselines, "NAME (meta-lr P)"
# and "NAME (tuned meta-lr)", seed-paired.
#
#   experiments/paper/tune_meta_lr.sh [--results]   -> runs/<time>-tune-meta-lr/ (or $HAMLET_RESULTS_DIR);
#                                                      --results writes results/paper/tuned_meta_lr/
#   TABLES="quadratic" LEARNED="phnn" SEEDS="0 1 2 3 4" FACTORS="0.1 0.3 1 3" select what runs (these are the
#   defaults; TABLES: the tables learned optimizers are meta-trained on). HAMLET_JOBS runs side by side (nproc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_paper_study experiments/paper/tune_meta_lr.sh tune-meta-lr "$root/results/paper/tuned_meta_lr" "$@"
tables="${TABLES:-quadratic}" learned="${LEARNED:-phnn}" seeds="${SEEDS:-0 1 2 3 4}" factors="${FACTORS:-0.1 0.3 1 3}"
# shellcheck disable=SC2086
hamlet_check_tables experiments/paper/tune_meta_lr.sh $tables
for table in $tables; do
  [ "${paper_trained_on[$table]}" = "$table" ] || {
    echo "experiments/paper/tune_meta_lr.sh: no learned optimizer is meta-trained on $table (its weights come from ${paper_trained_on[$table]})" >&2
    exit 2
  }
done
[[ " $factors " == *" 1 "* ]] || { echo "experiments/paper/tune_meta_lr.sh: FACTORS must contain 1 (the protocol's meta-lr)" >&2; exit 2; }
mkdir -p "$out"/{weights,meta,selection}

protocol_flags() { echo --config="$protocols/$1/task.ini" --config="$protocols/$1/$2.ini"; }
scaled() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6g", a * b }'; }
# candidate TABLE NAME SEED FACTOR: the weight file of one grid point (f = 1: the committed run's).
candidate() {
  if [ "$4" = 1 ]; then echo "$full/weights/$1_$2_seed$3.h5"; else echo "$out/weights/$1_$2_seed$3_lr-x$4.h5"; fi
}
train_candidate() {  # table name seed factor meta-lr
  local table=$1 name=$2 seed=$3 factor=$4 lr=$5 w
  w="$(candidate "$table" "$name" "$seed" "$factor")"
  if [ -f "$w" ]; then log "$name on $table, seed $seed, meta-lr $lr: $(basename "$w") exists, kept"; return 0; fi
  log "meta-train $name on $table (seed $seed, meta-lr $lr = $factor x protocol)"
  # shellcheck disable=SC2046
  "$bin" meta-train $(protocol_flags "$table" "$name") --meta-lr="$lr" --optimizer."$name".seed="$seed" --seed="$seed" \
    --log-level=warn --weights-out="$w" --out="$out/meta/$(basename "$w")" >/dev/null
}
evaluate_weights() {  # table name weights out
  local table=$1 name=$2
  # shellcheck disable=SC2046
  "$bin" evaluate --config="$protocols/$table/task.ini" --config="$protocols/$table/$name.ini" --optimizers="$name" \
    --optimizer."$name".weights="$3" --log-level=warn --out="$4" >/dev/null
}
# select_and_evaluate TABLE NAME SEED: hamlet select over the seed's grid, then both evaluations.
select_and_evaluate() {
  local table=$1 name=$2 seed=$3 f chosen
  local tag=${table}_${name}_seed${seed} weights=()
  # Paths relative to the repository root, so that the recorded selection reads the same in every clone.
  for f in $factors; do weights+=(--weights="$(candidate "$table" "$name" "$seed" "$f" | sed "s|^$root/||")"); done
  chosen=$(cd "$root" && "$bin" select "${weights[@]}" --out="$out/selection/$tag.json" 2> "$out/selection/$tag.log")
  [[ "$chosen" = /* ]] || chosen="$root/$chosen"
  sed -e 's/^\[[0-9:]*\] info: //' "$out/selection/$tag.log" > "$out/selection/$tag.txt"
  rm -f "$out/selection/$tag.log"
  log "$tag: chose $(basename "$chosen")"
  mkdir -p "$out/$table"
  evaluate_weights "$table" "$name" "$(candidate "$table" "$name" "$seed" 1)" "$out/$table/protocol_${name}_seed$seed.h5"
  evaluate_weights "$table" "$name" "$chosen" "$out/$table/tuned_${name}_seed$seed.h5"
}

declare -A protocol_lr
for table in $tables; do
  for name in $learned; do
    protocol_lr[$table.$name]="$(hamlet_protocol_meta_lr "$bin" "$table" "$name")"
    for seed in $seeds; do
      [ -f "$(candidate "$table" "$name" "$seed" 1)" ] || { log "missing $(candidate "$table" "$name" "$seed" 1): run experiments/paper/run.sh --results first"; exit 1; }
      for f in $factors; do
        hamlet_run_job "$jobs" train_candidate "$table" "$name" "$seed" "$f" "$(scaled "$f" "${protocol_lr[$table.$name]}")"
      done
    done
  done
done
hamlet_wait_jobs || { log "a meta-training run failed (see the messages above)"; exit 1; }
for table in $tables; do
  for name in $learned; do
    for seed in $seeds; do hamlet_run_job "$jobs" select_and_evaluate "$table" "$name" "$seed"; done
  done
done
hamlet_wait_jobs || { log "a selection or evaluation failed (see the messages above); table not written"; exit 1; }
echo "- \`TABLES=\"$tables\" LEARNED=\"$learned\" SEEDS=\"$seeds\" FACTORS=\"$factors\" experiments/paper/tune_meta_lr.sh$flag\`: $(hamlet_wall_time), $jobs jobs side by side; $("$bin" version)." >> "$out/PROVENANCE.md"

HAMLET_BIN="$bin" "$root/experiments/paper/make_meta_lr_table.sh" "$out" "$factors"
echo "tuned meta-learning rates: $out/TABLE.md"
