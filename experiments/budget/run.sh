#!/usr/bin/env bash
# MNIST test loss against meta-training budget (issue "Scale meta-training" §3, issue "Learned optimizers that can
# win" §4): each learned optimizer meta-trained on the MNIST sigmoid MLP with N problem-trajectories of T = 100 for
# every N of BUDGETS, every seed of SEEDS, on RANKS local data-parallel ranks (--processes; B = RANKS problems per
# episode); every other setting comes from experiments/protocols/mnist_sigmoid/{task,NAME}.ini. The selected
# weights are evaluated on Table A2's 100 paired test problems and compared by `hamlet compare` with the committed
# baselines and learned rows of results/paper/full/mnist_sigmoid.
#
#   experiments/budget/run.sh [--results]     -> runs/<time>-budget/ (or $HAMLET_RESULTS_DIR); --results adds to
#                                                 results/budget/ (files of other names, budgets, seeds stay)
#   NAMES="phnn lstm" SEEDS="0 1 2" BUDGETS="30 100 1000" RANKS=2 select what runs (defaults: phnn, 0, 1000, 2);
#   RECIPES="protocol log clipped reparam" the meta-training recipes (default: protocol, the protocol files alone);
#   any other name R adds experiments/protocols/recipes/R.ini to the meta-training command and tags the run NAME+R.
#   JOBS=2 runs that many meta-training runs side by side (default 1; JOBS x RANKS processes in all).
#   TIME_LIMIT=SECONDS stops meta-training at that wall time of the whole invocation (meta-train --time-limit): a
#   run that does not finish keeps its checkpoint (checkpoints/NAME_nN_seedK.h5) and the same command continues it
#   later, bitwise as if uninterrupted; a run whose evaluation file exists is skipped. Exit status 3 when a run is
#   left unfinished. Long budgets (the paper's 1,000 trajectories for phnn and lstm) spread this way over sessions.
#
# A budget of N trajectories is E epochs x P episodes of B = RANKS problems with P = 10 below 300 trajectories and
# 25 from 300 on, E = N / (P B) (30 on one rank: 3 x 10, the MNIST budget phnn and lstm had in the paper tables
# before they got the paper's 1,000; 1000 on two ranks: 20 x 25). Files: {weights,meta,eval}/TAG_nN_seedK.h5 with
# TAG = NAME, or NAME+RECIPE (NAME_seedK.h5: N = 1000, files of the first study).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_experiment_flags experiments/budget/run.sh "$@"
out="$(hamlet_output_dir budget "$root/results/budget" $regenerate)"
names="${NAMES:-phnn}" seeds="${SEEDS:-0}" ranks="${RANKS:-2}" budgets="${BUDGETS:-1000}" recipes="${RECIPES:-protocol}"
protocols="$root/experiments/protocols/mnist_sigmoid"
for recipe in $recipes; do
  [ "$recipe" = protocol ] || [ -f "$root/experiments/protocols/recipes/$recipe.ini" ] || {
    echo "experiments/budget/run.sh: RECIPES: no experiments/protocols/recipes/$recipe.ini" >&2
    exit 2
  }
done
mkdir -p "$out"/{weights,meta,eval,checkpoints}  # kept: --resume continues the runs in checkpoints/
hamlet_begin budget
# budget_flags N: the meta-training flags of N problem-trajectories on $ranks ranks (an error if they do not divide).
budget_flags() {
  local n=$1 per=10
  [ "$n" -ge 300 ] && per=25
  if [ $(( n % (per * ranks) )) -ne 0 ]; then
    echo "experiments/budget/run.sh: a budget of $n trajectories is not a whole number of epochs of $per episodes x $ranks problems" >&2
    return 1
  fi
  echo --epochs=$(( n / (per * ranks) )) --trajectories=$per --batch=$ranks
}
# EVAL_FLAGS overrides the evaluation (for a quick check of the script only).
read -r -a eval_flags <<< "${EVAL_FLAGS:-}"
for n in $budgets; do budget_flags "$n" >/dev/null; done
processes=()
[ "$ranks" -gt 1 ] && processes=(--processes="$ranks")  # one rank: this process
jobs="${JOBS:-1}"
hamlet_require_positive experiments/budget/run.sh JOBS "$jobs"
time_limit="${TIME_LIMIT:-0}"
[[ "$time_limit" =~ ^[0-9]+$ ]] || { echo "experiments/budget/run.sh: TIME_LIMIT must be whole seconds, got '$time_limit'" >&2; exit 2; }
paused="$(mktemp)"
trap 'rm -f "$paused"' EXIT
# limit_flags: --time-limit with what is left of TIME_LIMIT (none without one); fails when less than 2 minutes are
# left, not enough to start a run.
limit_flags() {
  [ "$time_limit" -gt 0 ] || return 0
  local left=$(( time_limit - ($(date +%s) - start) ))
  [ "$left" -ge 120 ] || return 1
  echo --time-limit="$left"
}
# run_one NAME RECIPE N SEED: meta-train NAME with N trajectories, the recipe and seed SEED (continuing its
# checkpoint when one is there), evaluate the selected weights, append the wall times to timings.md.
run_one() {
  local name=$1 recipe=$2 n=$3 seed=$4 budget limit t0 t1 rc=0 recipe_flags=()
  read -r -a budget <<< "$(budget_flags "$n")"
  local tag=${name}_n${n}_seed${seed}
  if [ "$recipe" != protocol ]; then
    tag=${name}+${recipe}_n${n}_seed${seed}
    recipe_flags=(--config="$root/experiments/protocols/recipes/$recipe.ini")
  fi
  local checkpoint="$out/checkpoints/$tag.h5" resume=() how="meta-training"
  if [ -f "$out/eval/$tag.h5" ]; then log "$tag: done before (eval/$tag.h5), skipped"; return 0; fi
  if ! limit="$(limit_flags)"; then log "$tag: not started, TIME_LIMIT reached"; echo "$tag" >> "$paused"; return 0; fi
  if [ -f "$checkpoint" ]; then resume=(--resume); how="meta-training (resumed from its checkpoint)"; fi
  t0=$(date +%s)
  log "meta-train $tag: ${budget[*]} on $ranks rank(s)${resume:+, resumed}"
  # shellcheck disable=SC2086
  "$bin" meta-train --config="$protocols/task.ini" --config="$protocols/$name.ini" "${recipe_flags[@]}" "${budget[@]}" \
    "${processes[@]}" --seed="$seed" --optimizer.$name.seed="$seed" --log-level=warn \
    --checkpoint="$checkpoint" "${resume[@]}" $limit \
    --weights-out="$out/weights/$tag.h5" --out="$out/meta/$tag.h5" >/dev/null || rc=$?
  t1=$(date +%s)
  if [ "$rc" = 3 ]; then
    echo "- \`$tag\`: ${budget[*]} on $ranks rank(s), $jobs job(s) side by side; $how stopped by TIME_LIMIT after $((t1 - t0)) s, checkpoint kept; $(lscpu | sed -n 's/^Model name: *//p')" >> "$out/timings.md"
    echo "$tag" >> "$paused"
    return 0
  fi
  [ "$rc" = 0 ] || return "$rc"
  log "evaluate $tag"
  hamlet_budget_evaluate "$bin" "$protocols/task.ini" "$protocols/$name.ini" "$name" "$out/weights/$tag.h5" \
    "$out/eval/$tag.h5" "${eval_flags[@]}"
  rm -f "$checkpoint"  # the weights and run files hold everything now
  echo "- \`$tag\`: ${budget[*]} on $ranks rank(s), $jobs job(s) side by side; $how $((t1 - t0)) s, evaluation $(( $(date +%s) - t1 )) s; $(lscpu | sed -n 's/^Model name: *//p')" >> "$out/timings.md"
}
for name in $names; do
  for recipe in $recipes; do
    for n in $budgets; do
      for seed in $seeds; do hamlet_run_job "$jobs" run_one "$name" "$recipe" "$n" "$seed"; done
    done
  done
done
hamlet_wait_jobs
limit_text=""
[ "$time_limit" -gt 0 ] && limit_text=" TIME_LIMIT=$time_limit"
recipe_text=""
[ "$recipes" = protocol ] || recipe_text=" RECIPES=\"$recipes\""
echo "- \`NAMES=\"$names\"$recipe_text SEEDS=\"$seeds\" BUDGETS=\"$budgets\" RANKS=$ranks JOBS=$jobs$limit_text experiments/budget/run.sh$flag\`: total wall time $(( $(date +%s) - start )) s on $(nproc) CPU core(s)$([ -s "$paused" ] && echo "; unfinished: $(sort "$paused" | tr '\n' ' ' | sed 's/ $//')")." >> "$out/timings.md"
HAMLET_BIN="$bin" "$root/experiments/budget/make_table.sh" "$out"
echo "budget study: $out/TABLE.md"
if [ -s "$paused" ]; then
  echo "unfinished (TIME_LIMIT): $(sort "$paused" | tr '\n' ' ')-- the same command continues them" >&2
  exit 3
fi
