#!/usr/bin/env bash
# Reproduces OPT-ML Tables A1-A3 (METHODS.md §4, §6, §9): tunes the baselines on validation problems, meta-trains
# phnn-paper, phnn and lstm (several meta-training seeds), evaluates every method on the same paired test problems
# on (1) the 10-D quadratic, (2) the MNIST MLP 784-20-10 sigmoid, (3) the sigmoid-trained optimizers on the ReLU
# MLP (baselines re-tuned), then writes TABLES.md and one figure per table.
#
#   experiments/paper/run.sh            full budgets (paper protocol, 3 seeds) -> results/paper/
#   experiments/paper/run.sh --quick    small budgets (minutes)               -> results/paper/quick/
#
# HAMLET_BIN selects the binary (default build/hamlet).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${HAMLET_BIN:-$root/build/hamlet}"
mode=full
[ "${1:-}" = "--quick" ] && mode=quick
if [ "$mode" = quick ]; then
  out="${HAMLET_RESULTS_DIR:-$root/results/paper/quick}"
  problems=20; seeds="0"; tune_problems=5
  quad_meta=(--epochs=5 --trajectories=20 --validation-problems=20)
  mnist_meta=(--epochs=1 --trajectories=4 --validation-problems=4)
else
  out="${HAMLET_RESULTS_DIR:-$root/results/paper}"
  problems=100; seeds="0 1 2"; tune_problems=20
  quad_meta=(--epochs=100 --trajectories=20 --validation-problems=50)
  mnist_meta=(--epochs=50 --trajectories=20 --validation-problems=20)
fi
mkdir -p "$out"/{quadratic,mnist_sigmoid,mnist_relu,weights,meta}
start=$(date +%s)
log() { echo "[paper/$mode] $*" >&2; }

quadratic_task=(--task=quadratic --task.dim=10)
sigmoid_task=(--task=mlp --task.dataset=mnist --task.activation=sigmoid --task.hidden=20)
relu_task=(--task=mlp --task.dataset=mnist --task.activation=relu --task.hidden=20)
baselines=momentum,nag,adam,rmsprop,symplectic-euler,symplectic,ecdsep

# Learned-optimizer settings per training task (METHODS.md §4.3; phnn uses a constant mass, see README).
quadratic_opts=(--optimizer.phnn-paper.out_mul=0.001 --optimizer.phnn.mass=constant --optimizer.lstm.out_mul=1)
mnist_opts=(--optimizer.phnn-paper.preprocess=true --optimizer.phnn-paper.norm=false
            --optimizer.phnn.preprocess=true --optimizer.phnn.mass=constant
            --optimizer.lstm.preprocess=true --optimizer.lstm.out_mul=0.1)

meta_train() {  # task_label optimizer seed meta_args... -- task args...
  local label=$1 name=$2 seed=$3; shift 3
  local unroll=15 lr=0.01
  if [ "$name" = lstm ]; then unroll=20; [ "$label" = quadratic ] && lr=0.003; fi
  local opts=()
  local all
  if [ "$label" = quadratic ]; then all=("${quadratic_opts[@]}"); else all=("${mnist_opts[@]}"); fi
  for o in "${all[@]}"; do [[ $o == --optimizer.$name.* ]] && opts+=("$o"); done
  log "meta-train $name on $label (seed $seed)"
  "$bin" meta-train --optimizer="$name" "${opts[@]}" --optimizer."$name".seed="$seed" --seed="$seed" \
    --unroll=$unroll --meta-lr=$lr --horizon=100 --log-level=warn "$@" \
    --weights-out="$out/weights/${label}_${name}_seed${seed}.h5" --out="$out/meta/${label}_${name}_seed${seed}.h5" \
    >/dev/null
}

evaluate_learned() {  # eval_label weights_label seed task args...
  local label=$1 wlabel=$2 seed=$3; shift 3
  local w=()
  for name in phnn-paper phnn lstm; do w+=(--optimizer.$name.weights="$out/weights/${wlabel}_${name}_seed${seed}.h5"); done
  log "evaluate learned optimizers (seed $seed) on $label"
  "$bin" evaluate "$@" --optimizers=phnn-paper,phnn,lstm "${w[@]}" --problems=$problems --steps=100 --seed=0 \
    --log-level=warn --out="$out/$label/learned_seed${seed}.h5" >/dev/null
}

evaluate_baselines() {  # label task args...
  local label=$1; shift
  log "tune + evaluate baselines on $label"
  "$bin" evaluate "$@" --optimizers=$baselines --tune --tune-problems=$tune_problems --problems=$problems \
    --steps=100 --seed=0 --log-level=warn --out="$out/$label/baselines.h5" >/dev/null
}

evaluate_baselines quadratic "${quadratic_task[@]}"
evaluate_baselines mnist_sigmoid "${sigmoid_task[@]}"
evaluate_baselines mnist_relu "${relu_task[@]}"
for seed in $seeds; do
  for name in phnn-paper phnn lstm; do
    meta_train quadratic $name "$seed" "${quad_meta[@]}" "${quadratic_task[@]}"
    meta_train mnist_sigmoid $name "$seed" "${mnist_meta[@]}" "${sigmoid_task[@]}"
  done
  evaluate_learned quadratic quadratic "$seed" "${quadratic_task[@]}"
  evaluate_learned mnist_sigmoid mnist_sigmoid "$seed" "${sigmoid_task[@]}"
  evaluate_learned mnist_relu mnist_sigmoid "$seed" "${relu_task[@]}"   # transfer: sigmoid-trained weights
done

seconds=$(( $(date +%s) - start ))
{
  echo "- Command: \`experiments/paper/run.sh$([ "$mode" = quick ] && echo " --quick")\` ($mode budgets), wall time ${seconds} s on $(nproc) CPU core(s)."
  echo "- Problems: $problems paired test problems per table (problem seed 0), 100 steps; baselines tuned on $tune_problems validation problems (seed 0) over the L2L grid."
  echo "- Meta-training seeds: $seeds. Quadratic: ${quad_meta[*]}; MNIST: ${mnist_meta[*]} (T = 100, U = 15, or 20 for the LSTM)."
  echo "- Software: $("$bin" version)."
} > "$out/PROVENANCE.md"
/usr/bin/python3 "$root/experiments/paper/make_tables.py" "$out" "experiments/paper/run.sh$([ "$mode" = quick ] && echo " --quick")"
for label in quadratic mnist_sigmoid mnist_relu; do
  /usr/bin/python3 "$root/experiments/paper/plot_curves.py" "$out/$label.png" "$label" "$out/$label"/*.h5
done
echo "paper reproduction ($mode): $out/TABLES.md, figures $out/{quadratic,mnist_sigmoid,mnist_relu}.png"
