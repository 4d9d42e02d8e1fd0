#!/usr/bin/env bash
# The learned optimizers' own knob tuned like the baselines' learning rates (issue "Statistics a reviewer accepts"):
# the meta-trained weights of the full reproduction (results/paper/full/weights) are evaluated with `evaluate
# --tune`, which picks out_mul from {10, 3, 1, 0.3, 0.1} x the value the weights were trained with by the mean final
# loss on the table's validation problems (the same tuner, problems and selection rule as the baselines' learning
# rates; the grid and the choice are recorded in each run file's /methods/NAME/tune group), then on the same 100
# paired test problems. TABLE.md puts the tuned rows ("NAME (tuned out_mul)") beside the committed rows at the
# trained value ("NAME (trained out_mul)") and the committed baselines, all through `hamlet compare`.
#
#   experiments/paper/tune_learned.sh [--results]   -> runs/<time>-tune-learned/ (or $HAMLET_RESULTS_DIR);
#                                                      --results regenerates results/paper/tuned/
#   TABLES="quadratic mnist_sigmoid" LEARNED="mlp-lopt lstm" SEEDS="0 1 2" select what runs (defaults: quadratic;
#   the five learned optimizers; every seed whose weights exist). HAMLET_JOBS evaluations side by side (nproc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_paper_study experiments/paper/tune_learned.sh tune-learned "$root/results/paper/tuned" "$@"
tables="${TABLES:-quadratic}" learned="${LEARNED:-$(hamlet_paper_learned)}"
hamlet_check_tables experiments/paper/tune_learned.sh $tables

# weight_seeds TABLE NAME: the seeds of SEEDS (default: all) whose weights the full reproduction has.
weight_seeds() {
  local wtable=${paper_trained_on[$1]} name=$2 f s
  if [ -n "${SEEDS:-}" ]; then
    for s in $SEEDS; do
      f="$full/weights/${wtable}_${name}_seed$s.h5"
      [ -f "$f" ] || { log "missing $f"; return 1; }
      echo "$s"
    done
  else
    for f in "$full/weights/${wtable}_${name}"_seed*.h5; do
      [ -f "$f" ] && basename "$f" .h5 | sed 's/.*_seed//'
    done | sort -n
  fi
}

tuned_evaluate() {  # table name seed
  local table=$1 name=$2 seed=$3 wtable=${paper_trained_on[$1]}
  log "tune out_mul + evaluate $name (seed $seed) on $table"
  "$bin" evaluate --config="$protocols/$table/task.ini" --config="$protocols/$wtable/$name.ini" --optimizers="$name" \
    --optimizer."$name".weights="$full/weights/${wtable}_${name}_seed${seed}.h5" --tune --log-level=warn \
    --out="$out/$table/learned_${name}_seed${seed}.h5" >/dev/null
}

used=""  # "table name: seeds; ..." for the provenance line
for table in $tables; do
  mkdir -p "$out/$table"
  for name in $learned; do
    seeds=$(weight_seeds "$table" "$name")
    [ -n "$seeds" ] || { log "no weights of $name for $table in $full/weights"; exit 1; }
    used="${used:+$used; }$table $name: seeds $(echo $seeds)"
    for seed in $seeds; do hamlet_run_job "$jobs" tuned_evaluate "$table" "$name" "$seed"; done
  done
done
hamlet_wait_jobs || { log "an evaluation failed (see the messages above); table not written"; exit 1; }

echo "- \`TABLES=\"$tables\" LEARNED=\"$learned\"${SEEDS:+ SEEDS=\"$SEEDS\"} experiments/paper/tune_learned.sh$flag\`: $(hamlet_wall_time), $jobs evaluations side by side; weights of $used; $("$bin" version)." >> "$out/PROVENANCE.md"

HAMLET_BIN="$bin" "$root/experiments/paper/make_tuned_table.sh" "$out"
echo "tuned learned optimizers: $out/TABLE.md"
