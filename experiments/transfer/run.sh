#!/usr/bin/env bash
# Transfer: the learned optimizers meta-trained on the MNIST sigmoid MLP 784-20-10 (by experiments/paper/run.sh),
# evaluated without retraining on other optimizees, next to the hand-designed optimizers re-tuned on each target's
# validation problems. Writes one directory per target (baselines.h5, learned.h5), TABLE.md and transfer.png.
#
#   experiments/transfer/run.sh            weights of results/paper/full (meta-training seed 0; SEEDS="0 1 2" more)
#   experiments/transfer/run.sh --quick    weights of results/paper (quick run)
# Output: runs/<time>-transfer[-quick]/ (or $HAMLET_RESULTS_DIR); --results regenerates the committed
# results/transfer/ (results/transfer/quick/ with --quick).
#
# Targets (experiments/transfer/targets.txt; the training task is "sigmoid", the reference): relu, tanh, elu
# activations; 40 hidden units; two hidden layers of 20; Fashion-MNIST; 10x the horizon (1000 steps); 100-D
# quadratics; Hamiltonian neural networks fitted to a mass-spring and a pendulum. TARGETS="relu hnn_spring" runs some.
# HAMLET_BIN selects the binary, HAMLET_JOBS the number of evaluations run side by side (default: nproc), LEARNED the
# learned optimizers (default: phnn-paper phnn lstm mlp-lopt phnn-features), SEEDS their meta-training seeds (default 0;
# the weights mnist_sigmoid_NAME_seedK.h5 must exist). A seed-0 row goes to <target>/learned_NAME.h5, seed K > 0 to
# <target>/learned_NAME_seedK.h5; compare groups the files of one optimizer as its seeds. ADD=1 adds learned rows to an
# existing directory: the other files stay (baselines are evaluated only where a target has none), a learned file that
# exists already is kept (so an interrupted ADD run continues where it stopped; delete a file to re-evaluate it), and
# PROVENANCE.md is appended to:
#   LEARNED=mlp-lopt SEEDS="1 2 3 4" ADD=1 experiments/transfer/run.sh --results
# REPLACE=1 (with ADD=1) re-evaluates exactly the files of the named LEARNED optimizers and SEEDS on the selected
# TARGETS even where they exist (new weights of those seeds), leaving every other file alone:
#   LEARNED=lstm SEEDS="0 1 2" ADD=1 REPLACE=1 experiments/transfer/run.sh --results
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_experiment_flags experiments/transfer/run.sh "$@"
if [ "$mode" = quick ]; then
  weights="${HAMLET_WEIGHTS_DIR:-$root/results/paper/weights}"
  out="$(hamlet_output_dir transfer-quick "$root/results/transfer/quick" $regenerate)"
  problems=10; long_problems=4; tune_problems=3; long_tune_problems=2
else
  weights="${HAMLET_WEIGHTS_DIR:-$root/results/paper/full/weights}"
  out="$(hamlet_output_dir transfer "$root/results/transfer" $regenerate)"
  problems=100; long_problems=20; tune_problems=20; long_tune_problems=5
fi
seeds="${SEEDS:-0}"
jobs="${HAMLET_JOBS:-$(nproc)}"
names="${LEARNED:-$(hamlet_paper_learned)}"
add="${ADD:-0}"
replace="${REPLACE:-0}"
[[ "$replace" =~ ^[01]$ ]] || { echo "experiments/transfer/run.sh: REPLACE must be 0 or 1, got '$replace'" >&2; exit 2; }
[ "$replace" = 0 ] || [ "$add" = 1 ] || { echo "experiments/transfer/run.sh: REPLACE=1 needs ADD=1" >&2; exit 2; }
log() { echo "[transfer/$mode] $*" >&2; }
for name in $names; do
  for seed in $seeds; do
    f="$weights/mnist_sigmoid_${name}_seed${seed}.h5"
    [ -f "$f" ] || { log "missing $f: run experiments/paper/run.sh$flag first"; exit 1; }
  done
done

# The optimizer files the weights were meta-trained with (experiments/protocols/mnist_sigmoid/, read by
# experiments/paper/run.sh too), so the trained weights mean the same thing here; their [meta-train] sections are
# not read by evaluate.
learned_flags() {  # name seed: the evaluate flags of one learned optimizer
  echo --optimizers="$1" --config="$root/experiments/protocols/mnist_sigmoid/$1.ini" \
    --optimizer."$1".weights="$weights/mnist_sigmoid_$1_seed$2.h5"
}
learned_file() {  # label name seed: the run file of one learned row
  if [ "$3" = 0 ]; then echo "$out/$1/learned_$2.h5"; else echo "$out/$1/learned_$2_seed$3.h5"; fi
}
baselines=momentum,nag,adam,rmsprop,symplectic-euler,symplectic,ecdsep

target() {  # label steps problems tune_problems task args...
  local label=$1 steps=$2 n=$3 tn=$4; shift 4
  mkdir -p "$out/$label"
  local name seed file
  if [ "$add" != 1 ] || [ ! -f "$out/$label/baselines.h5" ]; then
    log "$label: tune + evaluate baselines ($n problems, $steps steps)"
    "$bin" evaluate "$@" --optimizers=$baselines --tune --tune-problems="$tn" --problems="$n" --steps="$steps" \
      --seed=0 --log-level=warn --out="$out/$label/baselines.h5" >/dev/null
  fi
  for name in $names; do
    for seed in $seeds; do
      file="$(learned_file "$label" "$name" "$seed")"
      if [ "$add" = 1 ] && [ "$replace" != 1 ] && [ -f "$file" ]; then
        log "$label: $name seed $seed done before, kept"
        continue
      fi
      log "$label: evaluate $name (meta-training seed $seed)"
      # shellcheck disable=SC2046
      "$bin" evaluate "$@" $(learned_flags "$name" "$seed") --problems="$n" --steps="$steps" --seed=0 --log-level=warn \
        --out="$file" >/dev/null
    done
  done
}

start=$(date +%s)
# The targets file, the long targets first, so the side-by-side jobs finish close together.
selected="${TARGETS:-}"
known="$(hamlet_table_rows "$root/experiments/transfer/targets.txt" | cut -d'|' -f1 | tr '\n' ' ')"
for label in $selected; do
  [[ " $known " == *" $label "* ]] || { echo "experiments/transfer/run.sh: TARGETS: unknown target '$label' ($known)" >&2; exit 2; }
done
for pass in long normal; do
  while IFS='|' read -r label steps size _title flags; do
    [ "$size" = "$pass" ] || continue
    [ -z "$selected" ] || [[ " $selected " == *" $label "* ]] || continue
    n=$problems tn=$tune_problems
    [ "$size" = long ] && n=$long_problems tn=$long_tune_problems
    # shellcheck disable=SC2086
    hamlet_run_job "$jobs" target "$label" $steps $n $tn $flags
  done < <(hamlet_table_rows "$root/experiments/transfer/targets.txt")
done
hamlet_wait_jobs || { log "a step failed (see the messages above); table not written"; exit 1; }
seconds=$(( $(date +%s) - start ))

command="experiments/transfer/run.sh$flag"
cpu="$(lscpu | sed -n 's/^Model name: *//p')"
if [ "$add" = 1 ]; then
  replace_text=""
  [ "$replace" = 1 ] && replace_text=" REPLACE=1"
  {
    echo "- Rows added by \`${selected:+TARGETS=\"$selected\" }LEARNED=\"$names\" SEEDS=\"$seeds\" ADD=1${replace_text} $command\`, wall time ${seconds} s on $(nproc) CPU core(s) ($cpu):"
    echo "  weights \`${weights#$root/}/mnist_sigmoid_*_seedK.h5\` for K in $seeds, the same problems; $("$bin" version)."
  } >> "$out/PROVENANCE.md"
else
  {
    echo "- Command: \`$command\` ($mode budgets), wall time ${seconds} s on $(nproc) CPU core(s) ($cpu), $jobs evaluations side by side."
    echo "- Learned optimizers ($names): weights \`${weights#$root/}/mnist_sigmoid_*_seedK.h5\` (meta-training seeds K = $seeds)."
    echo "- $problems paired test problems per target (problem seed 0; $long_problems for horizon1000); baselines tuned per"
    echo "  target on $tune_problems validation problems ($long_tune_problems for horizon1000), tuning seed 0, over the L2L grid."
    echo "- Software: $("$bin" version)."
  } > "$out/PROVENANCE.md"
fi
HAMLET_BIN="$bin" "$root/experiments/transfer/make_table.sh" "$out" "$command"
/usr/bin/python3 "$root/experiments/transfer/plot_transfer.py" "$out"
echo "transfer ($mode): $out/TABLE.md, figure $out/transfer.png"
