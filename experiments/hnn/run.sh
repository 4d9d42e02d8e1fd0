#!/usr/bin/env bash
# The HNN task as a meta-training task of its own (issue "Learned optimizers that can win" §3): each learned
# optimizer of LEARNED is meta-trained on the Hamiltonian-neural-network mass-spring task for every seed of SEEDS,
# with the protocol of experiments/protocols/hnn_spring/{task,NAME}.ini, and evaluated on 100 paired test problems
# next to the hand-designed optimizers tuned on 20 validation problems; TABLE.md by `hamlet compare`. The
# hand-designed rows are the transfer study's (results/transfer/hnn_spring/baselines.h5: the same task, problems,
# steps and tuning; tuning 7 optimizers on HNN problems costs ~20 min) when that file exists, else evaluated here.
#
#   experiments/hnn/run.sh [--results]   -> runs/<time>-hnn/ (or $HAMLET_RESULTS_DIR); --results regenerates
#                                          results/hnn/
#   LEARNED="mlp-lopt" SEEDS="0 1 2" select what runs (defaults: mlp-lopt phnn-features; 0 1 2); HAMLET_JOBS the
#   processes side by side (default nproc), one thread each.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_full_only_flags experiments/hnn/run.sh "$@"
out="$(hamlet_output_dir hnn "$root/results/hnn" $regenerate)"
protocols="$root/experiments/protocols/hnn_spring"
learned="${LEARNED:-mlp-lopt phnn-features}" seeds="${SEEDS:-0 1 2}" jobs="${HAMLET_JOBS:-$(nproc)}"
baselines=momentum,nag,adam,rmsprop,symplectic-euler,symplectic,ecdsep
hamlet_begin hnn weights meta eval

# The hand-designed rows: the transfer study's file when it exists (referenced, not copied), else evaluated here.
committed_baselines="$root/$hamlet_hnn_baselines"
evaluate_baselines() {
  log "tune + evaluate baselines"
  "$bin" evaluate --config="$protocols/task.ini" --optimizers=$baselines --tune --log-level=warn \
    --out="$out/eval/baselines.h5" >/dev/null
}
learned_pipeline() {  # name seed: meta-train, then evaluate the selected weights
  local name=$1 seed=$2 tag=${1}_seed${2}
  log "meta-train $tag"
  "$bin" meta-train --config="$protocols/task.ini" --config="$protocols/$name.ini" --seed="$seed" \
    --optimizer."$name".seed="$seed" --log-level=warn --weights-out="$out/weights/$tag.h5" --out="$out/meta/$tag.h5" >/dev/null
  log "evaluate $tag"
  "$bin" evaluate --config="$protocols/task.ini" --config="$protocols/$name.ini" --optimizers="$name" \
    --optimizer."$name".weights="$out/weights/$tag.h5" --log-level=warn --out="$out/eval/learned_$tag.h5" >/dev/null
}
if [ -f "$committed_baselines" ]; then
  log "baselines: $committed_baselines"
else
  hamlet_run_job "$jobs" evaluate_baselines
fi
for name in $learned; do
  for seed in $seeds; do hamlet_run_job "$jobs" learned_pipeline "$name" "$seed"; done
done
hamlet_wait_jobs || { log "a step failed (see the messages above); table not written"; exit 1; }
seconds=$(( $(date +%s) - start ))

# budget NAME: the meta-training budget hamlet resolves from the protocol files.
budget() {
  local key text=""
  for key in epochs trajectories validation-problems unroll meta-lr; do
    text="$text --$key=$("$bin" meta-train --config="$protocols/task.ini" --config="$protocols/$1.ini" --print-config | sed -n "s/^$key = //p")"
  done
  echo "${text# }"
}
{
  echo "- Command: \`LEARNED=\"$learned\" SEEDS=\"$seeds\" experiments/hnn/run.sh$flag\`, wall time ${seconds} s on $(nproc) CPU core(s) ($(lscpu | sed -n 's/^Model name: *//p')), $jobs processes side by side."
  if [ -f "$committed_baselines" ]; then
    echo "- Hand-designed rows: $hamlet_hnn_baselines (the transfer study's, same task and problems)."
  fi
  echo "- Protocol: \`experiments/protocols/hnn_spring/*.ini\`; meta-training seeds $seeds; budgets:"
  for name in $learned; do echo "  $name: $(budget "$name")."; done
  echo "- Software: $("$bin" version)."
} > "$out/PROVENANCE.md"
HAMLET_BIN="$bin" "$root/experiments/hnn/make_table.sh" "$out" "\`experiments/hnn/run.sh$flag\`"
echo "hnn meta-training: $out/TABLE.md"
