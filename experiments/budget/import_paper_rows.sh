#!/usr/bin/env bash
# Keeps a learned optimizer's MNIST rows of the full paper reproduction as budget-study rows when the reproduction
# moves on to a larger budget (its protocol file changes and experiments/paper/run.sh overwrites the files): the
# meta-trained weights and meta-training run files of NAME at git commit COMMIT
# (results/paper/full/{weights,meta}/mnist_sigmoid_NAME_seedK.h5) become weights/ and meta/NAME_nN_seedK.h5 of the
# study, and each is evaluated again on Table A2's test problems with the task and optimizer files of that commit
# (experiments/protocols/mnist_sigmoid/{task,NAME}.ini; the evaluate command of experiments/budget/run.sh) into
# eval/NAME_nN_seedK.h5. N is the budget those runs were meta-trained with, in problem-trajectories (the "protocol"
# column of the table prints the budget recorded in each run file, so a wrong N shows there). Appends the source and
# wall times to timings.md and rewrites TABLE.md.
#
#   COMMIT=6ea48a7^ NAME=phnn N=30 SEEDS="0 1 2 3 4" experiments/budget/import_paper_rows.sh [--results]
#       -> runs/<time>-budget/ (or $HAMLET_RESULTS_DIR); --results adds to results/budget/
#   HAMLET_JOBS evaluations side by side (default: nproc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/experiments/lib.sh"
hamlet_full_only_flags experiments/budget/import_paper_rows.sh "$@"
commit="${COMMIT:?experiments/budget/import_paper_rows.sh: set COMMIT (the git commit whose paper rows to keep)}"
name="${NAME:?experiments/budget/import_paper_rows.sh: set NAME (a learned optimizer)}"
n="${N:?experiments/budget/import_paper_rows.sh: set N (the budget of those runs, in trajectories)}"
seeds="${SEEDS:-0 1 2}"
jobs="${HAMLET_JOBS:-$(nproc)}"
hamlet_require_positive experiments/budget/import_paper_rows.sh HAMLET_JOBS "$jobs"
hamlet_require_positive experiments/budget/import_paper_rows.sh N "$n"
rev="$(git -C "$root" rev-parse --verify --short "$commit^{commit}" 2>/dev/null)" ||
  { echo "experiments/budget/import_paper_rows.sh: COMMIT '$commit' is not a commit of this repository" >&2; exit 2; }
out="$(hamlet_output_dir budget "$root/results/budget" $regenerate)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# show PATH DEST: the file PATH as it was at the commit, or an error naming both.
show() {
  git -C "$root" show "$rev:$1" > "$2" 2>/dev/null ||
    { echo "experiments/budget/import_paper_rows.sh: $1 does not exist at commit $rev" >&2; exit 1; }
}
show experiments/protocols/mnist_sigmoid/task.ini "$scratch/task.ini"
show "experiments/protocols/mnist_sigmoid/$name.ini" "$scratch/$name.ini"
for seed in $seeds; do  # every file first, so that a missing one stops the import before anything is written
  show "results/paper/full/weights/mnist_sigmoid_${name}_seed$seed.h5" "$scratch/weights_$seed.h5"
  show "results/paper/full/meta/mnist_sigmoid_${name}_seed$seed.h5" "$scratch/meta_$seed.h5"
done
mkdir -p "$out"/{weights,meta,eval}
cpu="$(lscpu | sed -n 's/^Model name: *//p')"
# import_one SEED: one seed's files to their place, its evaluation, its timings line.
import_one() {
  local seed=$1 tag=${name}_n${n}_seed$1 t0
  t0=$(date +%s)
  echo "[budget] evaluate $tag (paper rows of $rev)" >&2
  # The weights in their final place first: the run file records their path, where `hamlet compare` reads the
  # meta-training budget from.
  mv "$scratch/weights_$seed.h5" "$out/weights/$tag.h5"
  mv "$scratch/meta_$seed.h5" "$out/meta/$tag.h5"
  hamlet_budget_evaluate "$bin" "$scratch/task.ini" "$scratch/$name.ini" "$name" "$out/weights/$tag.h5" \
    "$scratch/eval_$seed.h5"
  mv "$scratch/eval_$seed.h5" "$out/eval/$tag.h5"
  echo "- \`$tag\`: the full paper reproduction's row at commit $rev (weights and meta-training run file of results/paper/full, $n trajectories), evaluated again with that commit's protocol files in $(( $(date +%s) - t0 )) s, $jobs side by side; $cpu" >> "$out/timings.md"
}
for seed in $seeds; do hamlet_run_job "$jobs" import_one "$seed"; done
hamlet_wait_jobs || { echo "experiments/budget/import_paper_rows.sh: an evaluation failed (see above); table not written" >&2; exit 1; }
echo "- \`COMMIT=$commit NAME=$name N=$n SEEDS=\"$seeds\" experiments/budget/import_paper_rows.sh$flag\`." >> "$out/timings.md"
HAMLET_BIN="$bin" "$root/experiments/budget/make_table.sh" "$out"
echo "budget study: $out/TABLE.md"
