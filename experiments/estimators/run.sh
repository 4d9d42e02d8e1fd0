#!/usr/bin/env bash
# Estimator study (README "Meta-gradient estimators"; docs/methods.md §10): truncated BPTT, antithetic ES and PES
# meta-training phnn and lstm on the 10-D quadratic at equal optimizee-step budgets, 3 meta-training seeds, test
# loss of the selected weights against the budget.
#
#   experiments/estimators/run.sh [--results]   -> runs/<time>-estimators/ (or $HAMLET_RESULTS_DIR); --results
#                                                   regenerates results/estimators/ (TABLE.md, estimators.png, run files)
#
# Equal budgets: one epoch = 5 episodes of T = 100 steps. bptt trains on B = 8 problems per episode; es and pes on
# B = 1 problem with 4 antithetic pairs (8 perturbed trajectories), so every estimator spends 5 x 8 x 100 = 4,000
# optimizee problem-steps per epoch and takes the same number of meta-steps (--train-tail: phnn's U = 15 leaves a
# 10-step tail, which is trained, so no estimator spends steps that train nothing). A trajectory cut for exploding
# loss ends early, so the measured budget (in the table) can fall below the nominal one. Each run is extended by --resume
# (only --epochs grows) to 1, 3 and 10 epochs, and the weights selected so far (20 validation problems) are
# evaluated after each on the same 100 paired test problems (seed 0, 100 steps). HAMLET_BIN selects the binary,
# HAMLET_JOBS the number of parallel runs (default 1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_experiment_flags experiments/estimators/run.sh "$@"
out="$(hamlet_output_dir estimators "$root/results/estimators" $regenerate)"
jobs="${HAMLET_JOBS:-1}"
seeds="0 1 2"
epochs_list="1 3 10"
hamlet_begin estimators meta weights eval ckpt
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src include experiments 2>/dev/null || rev="$rev + uncommitted changes"

# The paper's quadratic protocol (experiments/protocols/quadratic/: the task, T = 100, each optimizer's options, U and
# meta-lr); the study's own budgets below are flags, which override the files' paper budgets.
protocols="$root/experiments/protocols/quadratic"
common=(--train-tail --trajectories=5 --validation-problems=20 --validation-seed=1 --threads=1 --log-level=warn)

run_one() {  # optimizer estimator seed
  local name=$1 est=$2 seed=$3
  local protocol=(--config="$protocols/task.ini" --config="$protocols/$name.ini")
  local est_args=(--estimator=$est)
  if [ "$est" = bptt ]; then est_args+=(--batch=8); else est_args+=(--batch=1 --es.pairs=4 --es.sigma=0.01); fi
  local tag=${name}_${est}_seed${seed}
  local resume=()
  for e in $epochs_list; do
    log "meta-train $tag to $e epochs"
    "$bin" meta-train "${protocol[@]}" --optimizer.$name.seed=$seed --seed=$seed \
      "${common[@]}" "${est_args[@]}" --epochs=$e "${resume[@]}" \
      --checkpoint="$out/ckpt/$tag.h5" --weights-out="$out/weights/${tag}_e$e.h5" --out="$out/meta/${tag}_e$e.h5" \
      >/dev/null
    resume=(--resume)
    "$bin" evaluate "${protocol[@]}" --optimizers=$name --optimizer.$name.weights="$out/weights/${tag}_e$e.h5" \
      --threads=1 --log-level=warn --out="$out/eval/${tag}_e$e.h5" >/dev/null
  done
}

pids=() failed=0
for name in phnn lstm; do
  for est in bptt es pes; do
    for seed in $seeds; do
      run_one $name $est $seed &
      pids+=($!)
      if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
    done
  done
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed = 0 ] || { log "a run failed"; exit 1; }
# Untrained initialisations on the same test problems (budget 0).
for name in phnn lstm; do
  for seed in $seeds; do
    "$bin" evaluate --config="$protocols/task.ini" --config="$protocols/$name.ini" --optimizers=$name \
      --optimizer.$name.seed=$seed --threads=1 --log-level=warn --out="$out/eval/${name}_init_seed${seed}.h5" >/dev/null
  done
done
rm -rf "$out/ckpt"
wall=$(( $(date +%s) - start ))
{
  echo "- Command: \`experiments/estimators/run.sh\` (HAMLET_JOBS=$jobs), source at $rev, binary $bin"
  echo "- Meta-training seeds: $seeds (problem seed and optimizer initialisation seed); test problems: seed 0, 100 problems, 100 steps"
  echo "- Wall time: ${wall} s on $(nproc) CPU core(s) available, $jobs run(s) at a time, 1 thread each"
} > "$out/PROVENANCE.md"
HAMLET_BIN="$bin" "$root/experiments/estimators/make_table.sh" "$out"
/usr/bin/python3 "$root/experiments/estimators/plot.py" "$out"
log "done in ${wall} s"
