#!/usr/bin/env bash
# Reproduces OPT-ML Tables A1-A3 (docs/methods.md §4, §6, §9): tunes the baselines on validation problems, meta-trains
# phnn-paper, phnn and lstm (several meta-training seeds), evaluates every method on the same paired test problems
# on (1) the 10-D quadratic, (2) the MNIST MLP 784-20-10 sigmoid, (3) the sigmoid-trained optimizers on the ReLU
# MLP (baselines re-tuned), then writes TABLES.md and one figure per table.
#
#   experiments/paper/run.sh --quick    small budgets (minutes; what scripts/run.sh runs)
#   experiments/paper/run.sh            full budgets (3 meta-training seeds, ~1 h on 2 cores)
#   LEARNED="mlp-lopt" SEEDS="0 1 2" ADD=1 experiments/paper/run.sh --results
#                                       adds learned rows to an existing directory: meta-trains and evaluates only
#                                       the named optimizers, keeps every other file, appends to PROVENANCE.md
#   LEARNED="mlp-lopt" SEEDS="2" TABLES="mnist_sigmoid mnist_relu" ADD=1 experiments/paper/run.sh --results
#                                       the same, for the named tables only (meta-training on a training table only
#                                       where that table is named; mnist_relu alone evaluates existing weights)
#   LEARNED="lstm" SEEDS="0 1 2" TABLES="mnist_sigmoid mnist_relu" TRAIN=0 ADD=1 experiments/paper/run.sh --results
#                                       evaluates the existing weights only (no meta-training), one file per optimizer
#                                       and seed (learned_NAME_seedK.h5)
#
# Output: runs/<time>-paper-quick/ or runs/<time>-paper-full/ (or $HAMLET_RESULTS_DIR). With --results the committed
# results are regenerated on purpose: results/paper/ (--quick) or results/paper/full/.
# HAMLET_BIN selects the binary (default build/hamlet); LEARNED and SEEDS the learned optimizers and meta-training
# seeds (defaults: phnn-paper phnn lstm mlp-lopt phnn-features; 0 1 2, or 0 with --quick).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_experiment_flags experiments/paper/run.sh "$@"
# The protocol (task options, per-optimizer options, U, meta-lr, full budgets, evaluation settings) is data:
# experiments/protocols/<table>/task.ini and <table>/<optimizer>.ini, read by meta-train and evaluate alike. The
# quadratic follows docs/methods.md §4.3 (100 epochs x 20 trajectories, 50 selection problems). On MNIST every learned
# optimizer gets the paper's 50 x 20 trajectories (100k optimizee steps; phnn-paper, phnn and lstm meta-train through
# their fused kernels' autograd nodes, README "Speed"; an lstm seed costs ~1 h on one core). --quick overrides the budgets with
# flags (a flag wins over the files). All budgets are recorded in PROVENANCE.md and in every meta-training run file.
protocols="$root/experiments/protocols"
if [ "$mode" = quick ]; then
  out="$(hamlet_output_dir paper-quick "$root/results/paper" $regenerate)"
  problems=(--problems=20); seeds="${SEEDS:-0}"; tune_problems=(--tune-problems=5)
  quad_meta=(--epochs=5 --trajectories=20 --validation-problems=20)
  quad_meta_phnn=("${quad_meta[@]}")
  mnist_meta_paper=(--epochs=3 --trajectories=20 --validation-problems=4)
  mnist_meta=(--epochs=1 --trajectories=4 --validation-problems=4)
else
  out="$(hamlet_output_dir paper-full "$root/results/paper/full" $regenerate)"
  problems=(); seeds="${SEEDS:-0 1 2}"; tune_problems=()
  quad_meta=() quad_meta_phnn=() mnist_meta_paper=() mnist_meta=()
fi
jobs="${HAMLET_JOBS:-$(nproc)}"
add="${ADD:-0}"
train="${TRAIN:-1}"
[ "$train" = 1 ] || [ "$add" = 1 ] || { echo "experiments/paper/run.sh: TRAIN=0 needs ADD=1" >&2; exit 2; }
hamlet_paper_tables  # experiments/paper/tables.txt
tables="${TABLES:-$paper_tables}"
hamlet_check_tables experiments/paper/run.sh $tables
[ "$add" = 1 ] || [ "$tables" = "$paper_tables" ] || { echo "experiments/paper/run.sh: TABLES needs ADD=1" >&2; exit 2; }
[ "$add" = 1 ] || rm -rf "$out"/{quadratic,mnist_sigmoid,mnist_relu,weights,meta}
mkdir -p "$out"/{quadratic,mnist_sigmoid,mnist_relu,weights,meta}
hamlet_begin "paper/$mode"

baselines=momentum,nag,adam,rmsprop,symplectic-euler,symplectic,ecdsep
learned="${LEARNED:-$(hamlet_paper_learned)}"
# protocol_flags TABLE NAME...: --config flags of the table's task file and the named optimizers' files.
protocol_flags() {
  local table=$1 name; shift
  echo --config="$protocols/$table/task.ini"
  for name in "$@"; do echo --config="$protocols/$table/$name.ini"; done
}

meta_train() {  # table optimizer seed [budget flags...]
  local table=$1 name=$2 seed=$3; shift 3
  log "meta-train $name on $table (seed $seed)"
  "$bin" meta-train $(protocol_flags "$table" "$name") --optimizer."$name".seed="$seed" --seed="$seed" \
    --log-level=warn "$@" \
    --weights-out="$out/weights/${table}_${name}_seed${seed}.h5" --out="$out/meta/${table}_${name}_seed${seed}.h5" \
    >/dev/null
}

evaluate_learned() {  # table seed: each learned optimizer of paper_trained_on[table] with its training protocol, one file each
  local table=$1 seed=$2 name
  local wtable=${paper_trained_on[$table]}
  for name in $learned; do
    log "evaluate $name (seed $seed) on $table"
    "$bin" evaluate --config="$protocols/$table/task.ini" --config="$protocols/$wtable/$name.ini" --optimizers=$name \
      --optimizer.$name.weights="$out/weights/${wtable}_${name}_seed${seed}.h5" "${problems[@]}" \
      --log-level=warn --out="$out/$table/learned_${name}_seed${seed}.h5" >/dev/null
  done
}

evaluate_baselines() {  # table
  local table=$1
  log "tune + evaluate baselines on $table"
  "$bin" evaluate --config="$protocols/$table/task.ini" --optimizers=$baselines --tune "${tune_problems[@]}" \
    "${problems[@]}" --log-level=warn --out="$out/$table/baselines.h5" >/dev/null
}

# override_flags TABLE NAME: the --quick budget flags of one learned optimizer on a training table (none in full
# mode, where the protocol files hold the budgets). phnn-paper and mlp-lopt cost ~15x less per MNIST step than phnn
# and lstm: the larger budget.
override_flags() {
  local table=$1 name=$2
  if [ $table = quadratic ]; then
    if [ $name = phnn ]; then echo "${quad_meta_phnn[@]}"; else echo "${quad_meta[@]}"; fi
  elif [ $name = phnn-paper ] || [ $name = mlp-lopt ]; then echo "${mnist_meta_paper[@]}"
  else echo "${mnist_meta[@]}"
  fi
}

selected() { [[ " $tables " == *" $1 "* ]]; }  # table: is it in TABLES?
seed_pipeline() {  # seed: meta-train the learned optimizers on the training tables, then evaluate them on the tables
  local seed=$1 name table
  for name in $learned; do
    for table in quadratic mnist_sigmoid; do
      # shellcheck disable=SC2046
      [ "$train" = 1 ] && selected $table && meta_train $table $name "$seed" $(override_flags $table $name)
    done
  done
  for table in $paper_tables; do  # mnist_relu: transfer of the sigmoid-trained weights
    selected $table && evaluate_learned $table "$seed"
  done
  return 0
}

# Independent pipelines run side by side, at most $jobs at a time (each hamlet process uses one thread).
if [ "$add" != 1 ]; then
  hamlet_run_job "$jobs" evaluate_baselines quadratic
  hamlet_run_job "$jobs" evaluate_baselines mnist_sigmoid
  hamlet_run_job "$jobs" evaluate_baselines mnist_relu
fi
for seed in $seeds; do hamlet_run_job "$jobs" seed_pipeline "$seed"; done
hamlet_wait_jobs || { log "a step failed (see the messages above); tables not written"; exit 1; }

seconds=$(( $(date +%s) - start ))
# resolved KEY COMMAND FLAGS...: the value hamlet resolves for KEY from the protocol files and flags.
resolved() { local key=$1; shift; "$bin" "$@" --print-config | sed -n "s/^$key = //p"; }
# budget TABLE NAME [flags...]: the meta-training budget of one optimizer as flags, as hamlet resolves it.
budget() {
  local table=$1 name=$2 key text=""; shift 2
  for key in epochs trajectories validation-problems; do
    text="$text --$key=$(resolved "$key" meta-train $(protocol_flags "$table" "$name") "$@")"
  done
  echo "${text# }"
}
problems=$(resolved problems evaluate --config="$protocols/quadratic/task.ini" "${problems[@]}")
tune_problems=$(resolved tune-problems evaluate --config="$protocols/quadratic/task.ini" "${tune_problems[@]}")
# budgets: every learned optimizer's meta-training budget per training table, as hamlet resolves it.
budgets() {
  local name text
  for name in $learned; do
    text=""
    # shellcheck disable=SC2046
    selected quadratic && text="quadratic $(budget quadratic $name $(override_flags quadratic $name)); "
    # shellcheck disable=SC2046
    selected mnist_sigmoid && text="${text}MNIST $(budget mnist_sigmoid $name $(override_flags mnist_sigmoid $name))"
    echo "  $name: ${text%; }."
  done
}
if [ "$add" = 1 ]; then
  {
    train_text=""
    [ "$train" = 1 ] || train_text=" TRAIN=0"
    echo "- Rows added by \`LEARNED=\"$learned\" SEEDS=\"$seeds\" TABLES=\"$tables\"$train_text ADD=1 experiments/paper/run.sh$flag\`, wall time ${seconds} s on"
    echo "  $(nproc) CPU core(s) ($(lscpu | sed -n 's/^Model name: *//p')), meta-training seeds $seeds; everything else above is unchanged."
    if [ "$train" = 1 ]; then budgets; else echo "  Evaluation of the existing weights only (no meta-training)."; fi
    echo "  Software: $("$bin" version)."
  } >> "$out/PROVENANCE.md"
else
  {
    echo "- Command: \`experiments/paper/run.sh$flag\` ($mode budgets), wall time ${seconds} s on $(nproc) CPU core(s) ($(lscpu | sed -n 's/^Model name: *//p'))."
    echo "- Protocol: \`experiments/protocols/{quadratic,mnist_sigmoid,mnist_relu}/*.ini\`$([ "$mode" = quick ] && echo ", budgets overridden by --quick")."
    echo "- Problems: $problems paired test problems per table (problem seed 0), 100 steps; baselines tuned on $tune_problems validation problems (seed 0) over the L2L grid."
    echo "- Meta-training seeds: $seeds (B = 1 problem per trajectory, T = 100; U and the budgets from the protocol files):"
    budgets
    echo "- $jobs pipelines side by side, one thread each."
    echo "- Software: $("$bin" version)."
  } > "$out/PROVENANCE.md"
fi
HAMLET_BIN="$bin" "$root/experiments/paper/make_tables.sh" "$out" "experiments/paper/run.sh$flag"
plot() { /usr/bin/python3 "$root/experiments/paper/plot_curves.py" "$out/$1.png" "$2" "$out/$1"/*.h5; }
plot quadratic "10-D quadratic ($problems paired problems)"
plot mnist_sigmoid "MNIST MLP 784-20-10 sigmoid ($problems paired problems)"
plot mnist_relu "ReLU MLP, learned optimizers trained on sigmoid ($problems paired problems)"
echo "paper reproduction ($mode): $out/TABLES.md, figures $out/{quadratic,mnist_sigmoid,mnist_relu}.png"
