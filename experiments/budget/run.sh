#!/usr/bin/env bash
# The paper's MNIST meta-training budget for phnn and lstm (issue "Scale meta-training", section 3): 1,000 training
# trajectories of T = 100 steps, as phnn-paper gets in experiments/paper/run.sh and OPT-ML used (METHODS.md §4.3),
# instead of the 30 the committed full reproduction could afford. Runs on local data-parallel ranks
# (--processes): 20 epochs x 25 episodes of B = 2 problems (one problem per rank), so 1,000 problem-trajectories
# and 100,000 optimizee problem-steps per run; every other setting comes from the protocol files
# experiments/protocols/mnist_sigmoid/{task,NAME}.ini. The selected weights are evaluated on Table A2's 100 paired
# test problems and compared by `hamlet compare` with the committed baselines and the 30-trajectory seeds of
# results/paper/full/mnist_sigmoid.
#
#   experiments/budget/run.sh [--results]     -> runs/<time>-budget/ (or $HAMLET_RESULTS_DIR); --results
#                                                 regenerates results/budget/
#   NAMES="phnn lstm" SEEDS="0 1 2" RANKS=2 select what runs (defaults: phnn, seed 0, 2 ranks).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${HAMLET_BIN:-$root/build/hamlet}"
source "$root/experiments/lib.sh"
hamlet_experiment_flags experiments/budget/run.sh "$@"
out="$(hamlet_output_dir budget "$root/results/budget" $regenerate)"
names="${NAMES:-phnn}" seeds="${SEEDS:-0}" ranks="${RANKS:-2}"
protocols="$root/experiments/protocols/mnist_sigmoid"
paper="$root/results/paper/full/mnist_sigmoid"
mkdir -p "$out"/{weights,meta,eval}
log() { echo "[budget] $*" >&2; }
start=$(date +%s)
# BUDGET / EVAL_FLAGS override the budget and the evaluation (for a quick check of the script only).
read -r -a budget <<< "${BUDGET:---epochs=20 --trajectories=25 --batch=2}"
read -r -a eval_flags <<< "${EVAL_FLAGS:-}"
for name in $names; do
  for seed in $seeds; do
    tag=${name}_seed${seed}
    t0=$(date +%s)
    log "meta-train $tag: ${budget[*]} on $ranks ranks"
    "$bin" meta-train --config="$protocols/task.ini" --config="$protocols/$name.ini" "${budget[@]}" \
      --processes="$ranks" --seed="$seed" --optimizer.$name.seed="$seed" --log-level=warn \
      --weights-out="$out/weights/$tag.h5" --out="$out/meta/$tag.h5" >/dev/null
    t1=$(date +%s)
    log "evaluate $tag"
    "$bin" evaluate --config="$protocols/task.ini" --config="$protocols/$name.ini" --optimizers=$name \
      --optimizer.$name.weights="$out/weights/$tag.h5" "${eval_flags[@]}" --log-level=warn --out="$out/eval/$tag.h5" >/dev/null
    echo "- \`$tag\`: meta-training $((t1 - t0)) s on $ranks ranks, evaluation $(( $(date +%s) - t1 )) s" >> "$out/timings.md.tmp"
  done
done
mv "$out/timings.md.tmp" "$out/timings.md"

echo "- Total wall time $(( $(date +%s) - start )) s on $(nproc) CPU core(s)." >> "$out/timings.md"
HAMLET_BIN="$bin" "$root/experiments/budget/make_table.sh" "$out" \
  "\`experiments/budget/run.sh$flag\` (NAMES=\"$names\", SEEDS=\"$seeds\", RANKS=$ranks, budget ${budget[*]})"
echo "budget study: $out/TABLE.md"
