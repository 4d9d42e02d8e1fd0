#!/usr/bin/env bash
# Reproduces OPT-ML Tables A1-A3 (METHODS.md §4, §6, §9): tunes the baselines on validation problems, meta-trains
# phnn-paper, phnn and lstm (several meta-training seeds), evaluates every method on the same paired test problems
# on (1) the 10-D quadratic, (2) the MNIST MLP 784-20-10 sigmoid, (3) the sigmoid-trained optimizers on the ReLU
# MLP (baselines re-tuned), then writes TABLES.md and one figure per table.
#
#   experiments/paper/run.sh --quick    small budgets (minutes; what scripts/run.sh runs)
#   experiments/paper/run.sh            full budgets (3 meta-training seeds, ~1 h on 2 cores)
#
# Output: runs/<time>-paper-quick/ or runs/<time>-paper-full/ (or $HAMLET_RESULTS_DIR). With --results the committed
# results are regenerated on purpose: results/paper/ (--quick) or results/paper/full/.
# HAMLET_BIN selects the binary (default build/hamlet).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${HAMLET_BIN:-$root/build/hamlet}"
source "$root/experiments/lib.sh"
hamlet_experiment_flags experiments/paper/run.sh "$@"
# Budgets. The quadratic follows METHODS.md §4.3 (100 epochs x 20 trajectories, 50 selection problems). On MNIST a
# B = 1 meta-training step of phnn or lstm costs ~70 ms on one core (15,910 coordinates through a per-coordinate
# network and its backward pass), so the paper's 50 x 20 trajectories (100k optimizee steps, ~2 h per run) are cut to
# what fits a laptop-class CPU; phnn-paper is ~15x cheaper and gets a larger budget. All budgets are recorded in
# PROVENANCE.md and in every meta-training run file.
if [ "$mode" = quick ]; then
  out="$(hamlet_output_dir paper-quick "$root/results/paper" $regenerate)"
  problems=20; seeds="0"; tune_problems=5
  quad_meta=(--epochs=5 --trajectories=20 --validation-problems=20)
  quad_meta_phnn=("${quad_meta[@]}")
  mnist_meta_paper=(--epochs=3 --trajectories=20 --validation-problems=4)
  mnist_meta=(--epochs=1 --trajectories=4 --validation-problems=4)
else
  out="$(hamlet_output_dir paper-full "$root/results/paper/full" $regenerate)"
  problems=100; seeds="0 1 2"; tune_problems=20
  quad_meta=(--epochs=100 --trajectories=20 --validation-problems=50)
  quad_meta_phnn=(--epochs=30 --trajectories=20 --validation-problems=50)
  mnist_meta_paper=(--epochs=50 --trajectories=20 --validation-problems=20)
  mnist_meta=(--epochs=3 --trajectories=10 --validation-problems=10)
fi
jobs="${HAMLET_JOBS:-$(nproc)}"
rm -rf "$out"/{quadratic,mnist_sigmoid,mnist_relu,weights,meta}
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

seed_pipeline() {  # seed: meta-train the three learned optimizers on both tasks, then evaluate them on all three
  local seed=$1
  for name in phnn-paper phnn lstm; do
    local qm=("${quad_meta[@]}") mm=("${mnist_meta[@]}")
    [ $name = phnn ] && qm=("${quad_meta_phnn[@]}")
    [ $name = phnn-paper ] && mm=("${mnist_meta_paper[@]}")
    meta_train quadratic $name "$seed" "${qm[@]}" "${quadratic_task[@]}"
    meta_train mnist_sigmoid $name "$seed" "${mm[@]}" "${sigmoid_task[@]}"
  done
  evaluate_learned quadratic quadratic "$seed" "${quadratic_task[@]}"
  evaluate_learned mnist_sigmoid mnist_sigmoid "$seed" "${sigmoid_task[@]}"
  evaluate_learned mnist_relu mnist_sigmoid "$seed" "${relu_task[@]}"   # transfer: sigmoid-trained weights
}

# Independent pipelines run side by side, at most $jobs at a time (each hamlet process uses one thread).
pids=()
run_job() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  "$@" &
  pids+=($!)
}
run_job evaluate_baselines quadratic "${quadratic_task[@]}"
run_job evaluate_baselines mnist_sigmoid "${sigmoid_task[@]}"
run_job evaluate_baselines mnist_relu "${relu_task[@]}"
for seed in $seeds; do run_job seed_pipeline "$seed"; done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ $failed = 0 ] || { log "a step failed (see the messages above); tables not written"; exit 1; }

seconds=$(( $(date +%s) - start ))
{
  echo "- Command: \`experiments/paper/run.sh$flag\` ($mode budgets), wall time ${seconds} s on $(nproc) CPU core(s)."
  echo "- Problems: $problems paired test problems per table (problem seed 0), 100 steps; baselines tuned on $tune_problems validation problems (seed 0) over the L2L grid."
  echo "- Meta-training seeds: $seeds (B = 1 problem per trajectory, T = 100, U = 15, or 20 for the LSTM)."
  echo "  Quadratic: ${quad_meta[*]} (phnn: ${quad_meta_phnn[*]}); MNIST: phnn-paper ${mnist_meta_paper[*]}, phnn and lstm ${mnist_meta[*]}."
  echo "- $jobs pipelines side by side, one thread each."
  echo "- Software: $("$bin" version)."
} > "$out/PROVENANCE.md"
HAMLET_BIN="$bin" "$root/experiments/paper/make_tables.sh" "$out" "experiments/paper/run.sh$flag"
plot() { /usr/bin/python3 "$root/experiments/paper/plot_curves.py" "$out/$1.png" "$2" "$out/$1"/*.h5; }
plot quadratic "10-D quadratic ($problems paired problems)"
plot mnist_sigmoid "MNIST MLP 784-20-10 sigmoid ($problems paired problems)"
plot mnist_relu "ReLU MLP, learned optimizers trained on sigmoid ($problems paired problems)"
echo "paper reproduction ($mode): $out/TABLES.md, figures $out/{quadratic,mnist_sigmoid,mnist_relu}.png"
